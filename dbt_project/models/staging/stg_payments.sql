with

source as (

    select * from {{ source('jaffle_shop', 'raw_payments') }}

),

final as (

    select
        id as payment_id,
        order_id,
        payment_method,
        -- raw amounts are integer cents; decimal keeps dollar sums exact
        cast(amount / 100.0 as decimal(18, 2)) as amount,
        load_day

    from source

)

select * from final
