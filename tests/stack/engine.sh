#!/usr/bin/env bash
# Start a Docker engine on a CI/dev machine that has none running (see shared ENVIRONMENT notes).
# Idempotent: returns at once when `docker info` already answers.
set -euo pipefail

log_file="${DOCKERD_LOG:-/var/log/jaffle-dockerd.log}"
sock=/var/run/docker.sock
timeout_s="${DOCKERD_WAIT_SECONDS:-60}"

engine_up() { docker info >/dev/null 2>&1; }

if engine_up; then
    echo "engine.sh: Docker engine already running"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "engine.sh: no Docker engine answers and we are not root: cannot install or start one" >&2
    exit 1
fi

if ! command -v dockerd >/dev/null || ! command -v docker-compose >/dev/null \
    || ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/docker ]; then
    echo "engine.sh: installing docker.io docker-compose debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null
fi

# A stale socket from a killed engine makes `docker info` fail while dockerd would refuse to start.
if ! pgrep -x dockerd >/dev/null; then
    rm -f "$sock" /var/run/docker.pid
    echo "engine.sh: starting dockerd (log: $log_file)"
    setsid dockerd >"$log_file" 2>&1 < /dev/null &
fi

for _ in $(seq "$timeout_s"); do
    if [ -S "$sock" ] && engine_up; then
        echo "engine.sh: Docker engine ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done

echo "engine.sh: Docker engine did not come up within ${timeout_s}s; last lines of $log_file:" >&2
tail -n 20 "$log_file" >&2 || true
exit 1
