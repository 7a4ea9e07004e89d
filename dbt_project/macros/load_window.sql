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
