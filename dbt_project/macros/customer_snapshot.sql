{#- The customer list is a full snapshot, loaded only when its file changed: the loader leaves
    what it loaded (the file's sha256, the rules, the rows) as the comment of
    jaffle_shop.raw_customers. `customers` records, as its own comment, that comment and the
    code of the models it was built by; a run that finds both as recorded skips comparing
    every customer (10^7 rows: seconds a day). -#}

{% macro table_comment(schema, identifier) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set found = run_query(
        "select comment from duckdb_tables() where database_name = current_database()"
        ~ " and schema_name = '" ~ (schema | replace("'", "''")) ~ "'"
        ~ " and table_name = '" ~ (identifier | replace("'", "''")) ~ "'") -%}
    {{ return(found.rows[0][0] if found.rows else none) }}
{%- endmacro %}


{% macro customer_snapshot_key() -%}
    {#- What `customers` reconciles with: raw_customers' comment and the checksums of the
        models between them; none when unknown (no comment, or a unit test's graph, which has
        no sources). Looked up in the graph, not with source(): a source() here would add an
        edge raw_customers -> customers to the lineage. -#}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set raw = (graph.get('sources') or {}).values()
        | selectattr('source_name', 'equalto', 'jaffle_shop')
        | selectattr('name', 'equalto', 'raw_customers') | first -%}
    {%- set loaded = table_comment(raw.schema, raw.identifier) if raw else none -%}
    {%- if not loaded -%}{{ return(none) }}{%- endif -%}
    {%- set models = (graph.get('nodes') or {}).values()
        | selectattr('resource_type', 'equalto', 'model')
        | selectattr('name', 'in', ['stg_customers', 'customers'])
        | map(attribute='checksum') | map(attribute='checksum') | sort | join(',') -%}
    {{ return(loaded ~ ' models=' ~ models) }}
{%- endmacro %}


{% macro customer_snapshot_changed() -%}
    {#- True unless `this` was built from the snapshot loaded now by the models as they are. -#}
    {%- set key = customer_snapshot_key() -%}
    {{ return(key is none or key != table_comment(this.schema, this.identifier)) }}
{%- endmacro %}


{% macro forget_customers_gone_from_snapshot() -%}
    {%- if customer_snapshot_changed() -%}
        delete from {{ this }}
        where customer_id not in (select customer_id from {{ ref('stg_customers') }})
    {%- endif -%}
{%- endmacro %}


{% macro record_customer_snapshot() -%}
    {%- set key = customer_snapshot_key() -%}
    {%- if key is not none -%}
        comment on table {{ this }} is '{{ key | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
