{% macro get_where_subquery(relation) -%}
    {#- dbt's own macro, plus one placeholder: a test configured with
        `where: "__load_window__"` checks only the rows whose load_day is in the run's window
        (every row when the run has no window: a full refresh or the weekly full tests);
        `where: "__customer_window__"` checks only the customers with an order row in it. -#}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set where = where | replace('__load_window__', load_window('load_day')) -%}
        {%- if '__customer_window__' in where -%}
            {%- set where = where | replace('__customer_window__', customer_window('customer_id')) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
