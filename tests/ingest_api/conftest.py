"""A real API server (uvicorn on loopback) over the real S3 server and a migrated SQLite database."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn

from infra.storage.config import S3Settings
from ingest_api.app import create_app
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.settings import ApiSettings

MAX_UPLOAD_BYTES = 12 * 1024 * 1024


@dataclass(frozen=True)
class RunningApi:
    base_url: str
    settings: ApiSettings
    event_id: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    state_dir: Path = tmp_path_factory.mktemp("api-state")
    settings = ApiSettings.from_mapping(
        {"state_dir": state_dir, "s3": s3_settings, "max_upload_bytes": MAX_UPLOAD_BYTES, "port": _free_port()}
    )
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    with session_factory(engine)() as session:
        now = datetime.now(UTC)
        event = repository.create_event(
            session=session, name="Test incident", lat=48.8566, lon=2.3522, radius_m=500,
            starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=2),
        )
    engine.dispose()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{settings.port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the API server did not start")
        time.sleep(0.05)
    assert httpx.get(f"{base_url}/healthz").status_code == 200
    try:
        yield RunningApi(base_url, settings, event.id)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
