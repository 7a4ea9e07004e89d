#!/usr/bin/env bash
# The test command: on a fresh machine it installs uv and the locked environment, then runs the
# linters, the type checker and the whole pytest suite (pass pytest arguments through).
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
uv run --frozen pytest "$@"
