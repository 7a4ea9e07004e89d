#!/bin/sh
# Entrypoint of both project images. Secrets come from files in the secrets volume, never from
# the container's environment (`docker inspect` shows that); this process reads them and execs.
# A container started as root with JAFFLE_DROP_ROOT=1 (the daemon, which must find the Docker
# socket's group at start) drops to uid 1000 here, with that group added when the socket is
# mounted. Without it, `docker run -u 0 IMAGE CMD` (the README's backup commands) stays root.
set -eu

secret=/run/jaffle/secrets/postgres_password
if [ -z "${DAGSTER_POSTGRES_PASSWORD:-}" ] && [ -r "$secret" ]; then
    DAGSTER_POSTGRES_PASSWORD="$(cat "$secret")"
    export DAGSTER_POSTGRES_PASSWORD
fi

if [ "$(id -u)" = 0 ] && [ "${JAFFLE_DROP_ROOT:-}" = 1 ]; then
    if [ -S /var/run/docker.sock ]; then
        groups="--groups=$(stat -c %g /var/run/docker.sock)"
    else
        groups="--clear-groups"
    fi
    exec setpriv --reuid=1000 --regid=1000 "$groups" --inh-caps=-all "$@"
fi
exec "$@"
