# The tutorial's assets, as the UI and the GraphQL API name them (the code location has them all).
ASSETS = (
    "raw_customers", "raw_orders", "raw_payments",
    "stg_customers", "stg_orders", "stg_payments",
    "orders", "customers", "order_count_chart",
)  # fmt: skip
