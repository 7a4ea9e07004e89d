#!/usr/bin/env bash
# Build offline stand-ins for the public base images (python:3.11-slim-bookworm, postgres:15-bookworm)
# from Debian packages, for machines that reach no container registry. Test infrastructure only:
# users pull the real images. Skips any tag that already exists; prints what each step took.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache_dir="${STANDIN_CACHE_DIR:-/var/cache/jaffle-standins}"
python_tag="${STANDIN_PYTHON_IMAGE:-jaffle-standin/python:3.11-bookworm}"
postgres_tag="${STANDIN_POSTGRES_IMAGE:-jaffle-standin/postgres:15}"
suite=bookworm
rootfs="$cache_dir/rootfs-$suite"
# Debian's 20.10 client: it drives the engine's built-in BuildKit; the 28.x one has no buildx here.
docker_cli="${DOCKER_CLI:-/usr/bin/docker}"

have_image() { "$docker_cli" image inspect "$1" >/dev/null 2>&1; }
elapsed() { echo "$(( $(date +%s) - $1 ))s"; }

if have_image "$python_tag"; then
    echo "build_standins: $python_tag exists, skipping"
else
    start=$(date +%s)
    mkdir -p "$cache_dir"
    if [ ! -x "$rootfs/usr/bin/python3" ]; then
        rm -rf "$rootfs" "$rootfs.partial"
        debootstrap --variant=minbase \
            --include=python3,python3-venv,python3-pip,ca-certificates \
            "$suite" "$rootfs.partial" >"$cache_dir/debootstrap.log" 2>&1 \
            || { echo "build_standins: debootstrap failed, see $cache_dir/debootstrap.log" >&2; exit 1; }
        mv "$rootfs.partial" "$rootfs"
        echo "build_standins: debootstrap $suite took $(elapsed "$start")"
    fi
    # TLS to the package index goes through the host's CA bundle on these machines.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    tar -C "$rootfs" -c . | "$docker_cli" import \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        - "$python_tag" >/dev/null
    echo "build_standins: $python_tag built in $(elapsed "$start")"
fi

# The Postgres stand-in is rebuilt whenever its Dockerfile or entrypoint changes.
pg_hash=$(cat "$here"/standins/postgres/* | sha256sum | cut -c1-16)
pg_label() { "$docker_cli" image inspect -f '{{index .Config.Labels "jaffle.standin.hash"}}' "$1" 2>/dev/null; }
if have_image "$postgres_tag" && [ "$(pg_label "$postgres_tag")" = "$pg_hash" ]; then
    echo "build_standins: $postgres_tag exists, skipping"
else
    start=$(date +%s)
    DOCKER_BUILDKIT=1 "$docker_cli" build -q \
        --label "jaffle.standin.hash=$pg_hash" \
        --build-arg "BASE_IMAGE=$python_tag" \
        -t "$postgres_tag" "$here/standins/postgres" >/dev/null
    echo "build_standins: $postgres_tag built in $(elapsed "$start")"
fi
