"""A real API server (uvicorn on loopback) over the real S3 server and a migrated SQLite database."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from infra import local_stack
from infra.storage.config import S3Settings
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_test_event(settings: ApiSettings) -> str:
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            now = datetime.now(UTC)
            event = repository.create_event(
                session=session,
                name="Test incident",
                lat=48.8566,
                lon=2.3522,
                radius_m=500,
                starts_at=now - timedelta(hours=2),
                ends_at=now + timedelta(hours=2),
            )
            return event.id
    finally:
        engine.dispose()


@contextmanager
def running_api(settings: ApiSettings, event_id: str) -> Iterator[RunningApi]:
    """Serve `settings` for the block (a second API beside the session one: restarts, tight limits)."""
    with local_stack.api_in_background(settings) as base_url:
        yield RunningApi(base_url, settings, event_id)


def api_settings(s3_settings: S3Settings, state_dir: Path, **overrides: Any) -> ApiSettings:
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "s3": s3_settings,
        "max_upload_bytes": MAX_UPLOAD_BYTES,
        "port": free_port(),
    }
    return ApiSettings.from_mapping(values | overrides)


def open_submission(api: RunningApi) -> dict[str, str]:
    response = httpx.post(f"{api.base_url}/v1/events/{api.event_id}/submissions", timeout=30)
    assert response.status_code == 201, response.text
    opened: dict[str, str] = response.json()
    return opened


@pytest.fixture(scope="session")
def api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    settings = api_settings(s3_settings, tmp_path_factory.mktemp("api-state"))
    event_id = create_test_event(settings)
    with running_api(settings, event_id) as running:
        assert httpx.get(f"{running.base_url}/healthz").status_code == 200
        yield running


@pytest.fixture
def migrated(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database upgraded to the latest migration."""
    url = f"sqlite:///{tmp_path / 'witness.sqlite3'}"
    upgrade(url)
    engine = build_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(migrated: Engine) -> sessionmaker[Session]:
    return session_factory(migrated)


@pytest.fixture
def event_id(sessions: sessionmaker[Session]) -> str:
    """An event in the `migrated` database, open from an hour ago to an hour from now."""
    now = datetime.now(UTC)
    with sessions() as session:
        return repository.create_event(session=session, name="service test", lat=1.0, lon=2.0, radius_m=10,
                                       starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1)).id
