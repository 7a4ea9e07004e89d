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

# The code server reports the image its runs start from. `init` wrote the id of the image that
# carries this build's id (jaffle_server.image_pin); use it only when this container is that
# build, so a pin left from an earlier `up` never sends runs to other code than the UI shows.
pin=/run/jaffle/secrets/user_code_image
if [ -r "$pin" ] && [ -r /opt/jaffle-build-id ]; then
    read -r pinned_build pinned_image <"$pin" || true
    if [ "${pinned_build:-}" = "$(cat /opt/jaffle-build-id)" ] && [ -n "${pinned_image:-}" ]; then
        DAGSTER_CURRENT_IMAGE="$pinned_image"
        export DAGSTER_CURRENT_IMAGE
    else
        echo "entrypoint: the image pin is from another build; runs use ${DAGSTER_CURRENT_IMAGE:-the tag}" >&2
    fi
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
