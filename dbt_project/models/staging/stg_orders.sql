with

source as (

    select * from {{ source('jaffle_shop', 'raw_orders') }}

),

final as (

    select
        id as order_id,
        user_id as customer_id,
        order_date,
        status,
        load_day

    from source

)

select * from final
