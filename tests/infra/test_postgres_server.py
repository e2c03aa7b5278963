"""Production's database path: the Alembic migrations and the ingest service on a real PostgreSQL server."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy import inspect, select

from infra import postgres_server
from infra.s3server import find_free_port_base
from infra.storage.config import S3Settings
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.models import Upload
from ingest_api.db.session import build_engine, session_factory
from ingest_api.services.ingest import IngestService
from ingest_api.services.spool import SpooledBody

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[postgres_server.PostgresCluster]:
    # Not pytest's tmp_path: that is private to root, and the server runs as the postgres user.
    data_dir = Path(tempfile.mkdtemp(prefix="witness-pg-"))
    cluster = postgres_server.start(data_dir, port=find_free_port_base() + 9)
    try:
        yield cluster
    finally:
        postgres_server.stop(cluster)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_migrations_and_ingest_run_on_postgresql(
    postgres: postgres_server.PostgresCluster, s3_client: Minio, s3_settings: S3Settings, shared_data: Path
) -> None:
    upgrade(postgres.url)
    engine = build_engine(postgres.url)
    assert {"events", "submissions", "uploads", "alembic_version"} <= set(inspect(engine).get_table_names())
    sessions = session_factory(engine)
    with sessions() as session:
        now = datetime.now(UTC)
        event = repository.create_event(
            session=session, name="pg", lat=1.0, lon=2.0, radius_m=10, starts_at=now, ends_at=now + timedelta(hours=1)
        )
    service = IngestService(
        client=s3_client, buckets=s3_settings.buckets, sessions=sessions, max_pixels=10**8, api_version="test"
    )
    data = (shared_data / "exif/canon_600d_yosemite.jpg").read_bytes()
    body = SpooledBody(io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())
    receipt = service.accept_photo(event_id=event.id, submission_token=None, body=body)
    with sessions() as session:
        row = session.scalars(select(Upload).where(Upload.submission_id == receipt.submission_id)).one()
        assert row.sha256 == receipt.sha256 and row.received_at.tzinfo is not None
    engine.dispose()
