#!/usr/bin/env bash
# The test command: on a fresh machine it installs uv and the locked environment, then runs the
# linters (ruff, and sqlfluff on the dbt models), the type checker and the whole pytest suite
# (pass pytest arguments through).
# Stack tests (tests/stack) need a Docker engine: without one they skip and say why, unless
# JAFFLE_REQUIRE_STACK=1 (CI) turns that into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet "uv>=0.5"
fi
uv sync --frozen

uv run --frozen ruff check .
uv run --frozen ruff format --check .
uv run --frozen pyright
# sqlfluff takes the dbt templater only from a .sqlfluff in its working directory (from elsewhere
# it falls back to plain jinja and passes), hence dbt_project/. The templater compiles the project:
# its warehouse, target and logs go to a temp dir so the manifest the platform loads is left alone.
lint_dir="$(mktemp -d)"
trap 'rm -rf "$lint_dir"' EXIT
(cd dbt_project && DUCKDB_PATH="$lint_dir/lint.duckdb" DBT_TARGET_PATH="$lint_dir/target" \
    DBT_LOG_PATH="$lint_dir/logs" uv run --frozen sqlfluff lint models)
uv run --frozen pytest "$@"
