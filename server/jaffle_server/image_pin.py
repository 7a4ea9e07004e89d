"""Pin the code location's image: runs start from an image id, never from a moving tag.

A run records the image its code server reports (DAGSTER_CURRENT_IMAGE) when it is created, and
the daemon starts it from that image later. With a tag, a rebuild while the run waits in the queue
would change the code it runs. So on every `up`, `init` (the one service started before the code
server, and given the Docker socket for this alone) resolves the user-code tag to its image id and
writes `<build id> <image id>` to the secrets volume. docker/entrypoint.sh hands the id to the code
server when the container's own build id (/opt/jaffle-build-id, written at build time) matches, so
a pin left from another build is never used.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docker import DockerClient

BUILD_ID_PATH = "/opt/jaffle-build-id"
PIN_FILE = Path("/run/jaffle/secrets/user_code_image")


def build_id_of(client: DockerClient, image_id: str) -> str:
    """The build id baked into an image, read from a created (never started) container."""
    container = client.containers.create(image_id, entrypoint=["true"], network_disabled=True)
    try:
        stream, _ = container.get_archive(BUILD_ID_PATH)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(tar.getmembers()[0])
            assert member is not None
            return member.read().decode().strip()
    finally:
        container.remove(force=True)


def pin(tag: str, pin_file: Path = PIN_FILE) -> str:
    """Write `<build id> <image id>` for `tag`; returns the image id."""
    import docker

    client = docker.from_env()
    image_id = client.images.get(tag).id
    if not image_id:
        raise LookupError(f"the engine gave no id for {tag}")
    build_id = build_id_of(client, image_id)
    tmp = pin_file.with_name(f".{pin_file.name}.tmp")
    tmp.write_text(f"{build_id} {image_id}\n")
    tmp.chmod(0o444)
    tmp.replace(pin_file)
    return image_id
