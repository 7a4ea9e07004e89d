-- depends_on: {{ ref('stg_orders') }}
-- depends_on: {{ ref('stg_payments') }}

with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

{% if is_incremental() %}

    touched_orders as (

        {{ touched_order_ids() }}

    ),

    -- customers under any row of a touched order: an order moved to another customer leaves
    -- its previous one to recount too
    touched_customers as (

        select stg_orders.customer_id
        from {{ ref('stg_orders') }} as stg_orders
        where stg_orders.order_id in (select touched_orders.order_id from touched_orders)

        {% if customer_snapshot_changed() %}

            union

            -- customers new or renamed in the snapshot, when it changed since the last run
            select changed.customer_id
            from (
                select customer_id, first_name, last_name from customers
                except
                select customer_id, first_name, last_name from {{ this }}
            ) as changed

        {% endif %}

    ),

{% endif %}

customer_orders as (

    select
        customer_id,
        min(order_date) as first_order,
        max(order_date) as most_recent_order,
        count(order_id) as number_of_orders,
        sum(amount) as lifetime_value

    from orders

    {% if is_incremental() %}
        where customer_id in (select touched_customers.customer_id from touched_customers)
    {% endif %}

    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customer_orders.first_order,
        customer_orders.most_recent_order,
        coalesce(customer_orders.number_of_orders, 0) as number_of_orders,
        coalesce(customer_orders.lifetime_value, 0) as customer_lifetime_value

    from customers

    left join customer_orders
        on customers.customer_id = customer_orders.customer_id

    {% if is_incremental() %}
        where customers.customer_id in (
            select touched_customers.customer_id from touched_customers
        )
    {% endif %}

)

select * from final
