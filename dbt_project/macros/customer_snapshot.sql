{#- The customer list is a full snapshot, reloaded only when its file changed: the loader
    leaves the file's fingerprint as the comment of jaffle_shop.raw_customers. `customers`
    records, as its own comment, the fingerprint it last reconciled with, so a run whose
    snapshot is unchanged skips comparing every customer (10^7 rows: seconds a day). -#}

{% macro table_comment(schema, identifier) -%}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {%- set found = run_query(
        "select comment from duckdb_tables() where database_name = current_database()"
        ~ " and schema_name = '" ~ schema ~ "' and table_name = '" ~ identifier ~ "'") -%}
    {{ return(found.rows[0][0] if found.rows else none) }}
{%- endmacro %}


{% macro customer_snapshot_fingerprint() -%}
    {#- Looked up in the graph, not with source(): a source() here would add an edge
        raw_customers -> customers to the lineage. -#}
    {%- if not execute -%}{{ return(none) }}{%- endif -%}
    {#- (A unit test's graph has no sources: then unknown, as for a table with no comment.) -#}
    {%- set raw = (graph.get('sources') or {}).values()
        | selectattr('source_name', 'equalto', 'jaffle_shop')
        | selectattr('name', 'equalto', 'raw_customers') | first -%}
    {{ return(table_comment(raw.schema, raw.identifier) if raw else none) }}
{%- endmacro %}


{% macro customer_snapshot_changed() -%}
    {#- True unless `this` was reconciled with the snapshot loaded now (none: unknown, so
        changed). -#}
    {%- set loaded = customer_snapshot_fingerprint() -%}
    {{ return(loaded is none or loaded != table_comment(this.schema, this.identifier)) }}
{%- endmacro %}


{% macro forget_customers_gone_from_snapshot() -%}
    {%- if customer_snapshot_changed() -%}
        delete from {{ this }}
        where customer_id not in (select customer_id from {{ ref('stg_customers') }})
    {%- endif -%}
{%- endmacro %}


{% macro record_customer_snapshot() -%}
    {%- set loaded = customer_snapshot_fingerprint() -%}
    {%- if loaded is not none -%}
        comment on table {{ this }} is '{{ loaded | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}
