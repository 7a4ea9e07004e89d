#!/bin/bash
# First start of the postgres container (docker-entrypoint-initdb.d): Dagster's storage gets its
# own role, owner of its own database and nothing more (not a superuser), with the password the
# init service generated. The superuser's password is in a volume no other container mounts.
set -euo pipefail
role="${DAGSTER_DB_USER:-dagster}"
db="${DAGSTER_DB_NAME:-dagster}"
password="$(cat /run/jaffle/secrets/postgres_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set role="$role" --set db="$db" --set password="$password" <<'SQL'
create role :"role" login password :'password' nosuperuser nocreatedb nocreaterole noreplication;
create database :"db" owner :"role";
revoke all on database :"db" from public;
SQL
echo "10-dagster-role: role $role owns database $db (not a superuser)"
