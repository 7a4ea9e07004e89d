{% set payment_methods = var('payment_methods') %}

with

orders as (

    select * from {{ ref('stg_orders') }}

),

payments as (

    select * from {{ ref('stg_payments') }}

),

{% if is_incremental() %}

    touched_orders as (

        {{ touched_order_ids() }}

    ),

{% endif %}

-- each order's latest state: its row from the latest load day, whatever order days arrived in
latest_orders as (

    select * from orders

    {% if is_incremental() %}
        where order_id in (select touched_orders.order_id from touched_orders)
    {% endif %}

    qualify row_number() over (partition by order_id order by load_day desc) = 1

),

order_payments as (

    select
        order_id,

        {% for payment_method in payment_methods -%}
            sum(case when payment_method = '{{ payment_method }}' then amount else 0 end)
                as {{ payment_method }}_amount,
        {% endfor -%}

        sum(amount) as total_amount

    from payments

    {% if is_incremental() %}
        -- all of a touched order's payments, late ones included, whichever day they came on
        where order_id in (select touched_orders.order_id from touched_orders)
    {% endif %}

    group by order_id

),

final as (

    select
        latest_orders.order_id,
        latest_orders.customer_id,
        latest_orders.order_date,
        latest_orders.status,

        {% for payment_method in payment_methods -%}
            coalesce(order_payments.{{ payment_method }}_amount, 0) as {{ payment_method }}_amount,
        {% endfor -%}

        coalesce(order_payments.total_amount, 0) as amount,
        latest_orders.load_day

    from latest_orders

    left join order_payments
        on latest_orders.order_id = order_payments.order_id

)

select * from final
