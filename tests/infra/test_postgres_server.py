"""Production's database path on a real PostgreSQL server: the Alembic migrations, the ingest service, and the
audit log's append-only trigger (the SQLite one is tested in tests/ingest_api/governance)."""

from __future__ import annotations

import hashlib
import io
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from infra import postgres_server
from infra.s3server import find_free_port_base
from infra.storage.config import S3Settings
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.models import Upload
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit import AuditRecord, verify_chain
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.seals import SealTarget, seal_pending
from ingest_api.services.ingest import IngestService
from ingest_api.services.spool import SpooledBody

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[postgres_server.PostgresCluster]:
    """One cluster for the module, migrated to head once (each test works on its own rows)."""
    # Not pytest's tmp_path: that is private to root, and the server runs as the postgres user.
    data_dir = Path(tempfile.mkdtemp(prefix="witness-pg-"))
    cluster = postgres_server.start(data_dir, port=find_free_port_base() + 9)
    try:
        upgrade(cluster.url)
        yield cluster
    finally:
        postgres_server.stop(cluster)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_migrations_and_ingest_run_on_postgresql(
    postgres: postgres_server.PostgresCluster, s3_client: Minio, s3_settings: S3Settings, shared_data: Path
) -> None:
    upgrade(postgres.url)  # again: a no-op at head
    engine = build_engine(postgres.url)
    assert {"events", "submissions", "uploads", "alembic_version", "audit_entries", "cases", "fence_approvals",
            "case_subjects"} <= set(inspect(engine).get_table_names())
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


def test_audit_log_is_append_only_on_postgresql(
    postgres: postgres_server.PostgresCluster, s3_client: Minio, s3_settings: S3Settings, tmp_path: Path
) -> None:
    from infra.cli import app

    engine = build_engine(postgres.url)
    log = AuditLog(engine)
    for i in range(5):
        log.append(AuditRecord("pg-user", "investigator", "search", case_id="pg-case", parameters={"i": i},
                               result_ids=[f"photo-{i}"]))
    written = log.entries()
    assert [entry.seq for entry in written][-5:] == list(range(written[-1].seq - 4, written[-1].seq + 1))
    for statement in ("UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1",
                      "DELETE FROM audit_entries WHERE seq = (SELECT max(seq) FROM audit_entries)",
                      "TRUNCATE audit_entries"):
        with pytest.raises(DBAPIError, match="audit_entries is append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    assert log.entries() == written  # nothing changed, and appending still works after the refusals
    log.append(AuditRecord("pg-user", "investigator", "export", case_id="pg-case"))
    assert verify_chain(log.entries()).ok

    # `witness audit verify` on the PostgreSQL chain, sealed into a locked bucket of its own
    bucket = f"pg-audit-{time.time_ns()}"
    s3_client.make_bucket(bucket, object_lock=True)
    assert seal_pending(log, s3_client, SealTarget(bucket=bucket, retain_days=1))
    env = {"WITNESS_STATE_DIR": str(tmp_path), "WITNESS_DATABASE_URL": postgres.url,
           "WITNESS_S3__ENDPOINT": s3_settings.endpoint, "WITNESS_S3__BUCKETS__AUDIT": bucket}
    verified = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "audit chain intact" in verified.output and f"head seq {written[-1].seq + 1}" in verified.output
    engine.dispose()
