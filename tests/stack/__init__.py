"""Stack tests: the compose stack built and run for real, driven like a user would."""

# Every asset of the code location, as the UI and the GraphQL API name them.
ASSETS = (
    "raw_customers", "raw_orders", "raw_payments",
    "stg_customers", "stg_orders", "stg_payments",
    "orders", "customers", "order_count_chart",
)  # fmt: skip
