#!/usr/bin/env bash
# Bring the whole stack up on this machine from nothing: engine, stand-in base images, the two
# project images, then `compose up` and a wait until every service is healthy. Prints timings.
# Writes its settings to .stack/stack.env (gitignored) unless STACK_ENV_FILE names another file,
# which is used as it is when it exists (the pytest stack tests write their own). Tear down with
#   tests/stack/compose.sh --env-file .stack/stack.env down -v
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
here=tests/stack
wait_seconds="${STACK_HEALTHY_TIMEOUT:-180}"

bash "$here/engine.sh"
bash "$here/build_standins.sh"

mkdir -p .stack
env_file="${STACK_ENV_FILE:-.stack/stack.env}"
if [ ! -f "$env_file" ]; then
    cat >"$env_file" <<ENV
COMPOSE_PROJECT_NAME=jaffle
PYTHON_BASE_IMAGE=${STANDIN_PYTHON_IMAGE:-jaffle-standin/python:3.11-bookworm}
POSTGRES_IMAGE=${STANDIN_POSTGRES_IMAGE:-jaffle-standin/postgres:15}
ENV
fi
compose=("$here/compose.sh" --env-file "$env_file")

start=$(date +%s)
"${compose[@]}" build
echo "up.sh: images built in $(( $(date +%s) - start ))s"

start=$(date +%s)
"${compose[@]}" up -d --no-build
# Every service but the one-shot `init` (it has exited 0 by the time the others start).
services=$("${compose[@]}" config --services | grep -vcx init)
for _ in $(seq "$wait_seconds"); do
    healthy=$("${compose[@]}" ps -q | xargs -r docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' \
        | grep -c '^healthy$' || true)
    if [ "$healthy" -eq "$services" ]; then
        echo "up.sh: all $services services healthy $(( $(date +%s) - start ))s after up"
        exit 0
    fi
    sleep 1
done
echo "up.sh: only $healthy of $services services healthy after ${wait_seconds}s" >&2
"${compose[@]}" ps >&2
exit 1
