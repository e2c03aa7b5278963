"""The embedded local stack: the SeaweedFS S3 server and the API, started and stopped for demos and `witness up`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from infra import s3server
from ingest_api.app import create_app
from ingest_api.db.migrate import upgrade
from ingest_api.settings import ApiSettings


class LocalStackError(Exception):
    """The local stack could not be brought up."""


def s3_data_dir(settings: ApiSettings) -> Path:
    return settings.state_dir / "s3"


def s3_port(settings: ApiSettings) -> int:
    host, _, port = settings.s3.endpoint.rpartition(":")
    if host not in {"127.0.0.1", "localhost"} or not port.isdigit():
        raise LocalStackError(
            f"the local S3 server only runs on loopback; WITNESS_S3__ENDPOINT is {settings.s3.endpoint!r}"
        )
    return int(port)


def start_local_s3(settings: ApiSettings) -> s3server.LocalS3Server:
    if settings.mode != "local":
        raise LocalStackError(
            "the embedded S3 server is for local mode; production points WITNESS_S3__ENDPOINT at MinIO"
        )
    return s3server.start(s3_data_dir(settings), settings.s3, s3_port=s3_port(settings))


def prepare(settings: ApiSettings) -> None:
    """Start the local S3 server when in local mode and bring the metadata schema up to date."""
    if settings.mode == "local":
        start_local_s3(settings)
    upgrade(settings.effective_database_url)


@contextmanager
def api_in_background(settings: ApiSettings, *, timeout_s: float = 30.0) -> Iterator[str]:
    """Serve the API on a thread for the length of the block; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host=settings.host, port=settings.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="witness-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise LocalStackError(f"the API did not start on {settings.host}:{settings.port} (port in use?)")
        time.sleep(0.05)
    try:
        yield f"http://{settings.host}:{settings.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
