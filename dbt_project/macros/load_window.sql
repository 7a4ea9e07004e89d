{% macro load_window(column) -%}
    {#- The run's half-open window of load days, [min_day, max_day), as a filter on `column`.
        The vars come from the Dagster run's partitions; without them every day is in. -#}
    {%- set min_day = var('min_day', none) -%}
    {%- set max_day = var('max_day', none) -%}
    {%- if min_day is none and max_day is none -%}
        true
    {%- elif min_day is none or max_day is none -%}
        {{ exceptions.raise_compiler_error(
            "vars min_day and max_day go together (got min_day=" ~ min_day
            ~ ", max_day=" ~ max_day ~ ")") }}
    {%- else -%}
        ({{ column }} >= date '{{ min_day }}' and {{ column }} < date '{{ max_day }}')
    {%- endif -%}
{%- endmacro %}


{% macro touched_order_ids() -%}
    {#- Orders with a row or a payment loaded in the window: the only ones a run rebuilds. -#}
    select order_id from {{ ref('stg_orders') }} where {{ load_window('load_day') }}
    union
    select order_id from {{ ref('stg_payments') }} where {{ load_window('load_day') }}
{%- endmacro %}


{% macro customer_window(column) -%}
    {#- The customers of the order rows loaded in the run's window, as a filter on `column`
        (every customer when the run has no window). For the tests of the customer tables,
        which have no load day: the loader already refuses a customer file with a missing or
        repeated id, and the weekly full tests check every customer. -#}
    {%- if var('min_day', none) is none and var('max_day', none) is none -%}
        true
    {%- else -%}
        {#- Looked up in the graph: a ref() here, at run time, would be a dependency the
            test did not declare. -#}
        {%- set stg_orders = graph.nodes.values() | selectattr('resource_type', 'equalto', 'model')
            | selectattr('name', 'equalto', 'stg_orders') | first -%}
        ({{ column }} in (
            select customer_id from {{ stg_orders.relation_name }}
            where {{ load_window('load_day') }}
        ))
    {%- endif -%}
{%- endmacro %}
