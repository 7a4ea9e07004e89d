{% macro duckdb__test_relationships(model, column_name, to, field) %}
    {#- dbt's own test, with the parent read only for the child's values: the same rows fail,
        but a windowed child (a day of orders) no longer builds a hash table of the whole
        parent (every customer, every order) on each run. The child and parent columns must
        compare without a cast (an IN list of BIGINT against VARCHAR is a binder error, where
        dbt's join would cast): all three relationships here are BIGINT to BIGINT. -#}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
    where {{ field }} in (select child.from_field from child)
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}
