#!/usr/bin/env bash
# Run Compose the way the stack tests do: `docker compose` (v2) when present, else docker-compose
# 1.29. All arguments go to compose, e.g. `tests/stack/compose.sh --env-file .stack/stack.env ps`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

if docker compose version >/dev/null 2>&1; then
    exec docker compose "$@"
fi
# docker-compose 1.29 builds by running `docker build`. Debian's 20.10 client (/usr/bin) drives
# the engine's built-in BuildKit, which RUN --mount needs; the 28.x one has no buildx here.
export PATH="/usr/bin:$PATH" DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
exec docker-compose "$@"
