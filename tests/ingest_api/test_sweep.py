"""The API's housekeeping sweep: a failing step is logged and the next round runs, instead of the sweep ending."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.storage.client import build_client
from infra.storage.config import S3Settings
from ingest_api.app import sweep_once
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.services.ingest import IngestService
from ingest_api.services.limits import AbuseGuard
from ingest_api.services.metrics import UploadMetrics
from ingest_api.services.resumable import ResumableUploads
from ingest_api.services.resumable_store import ResumableStore
from ingest_api.settings import AbuseLimits


def test_a_failing_sweep_step_is_logged_and_the_next_round_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'witness.sqlite3'}"
    engine = build_engine(url)  # not migrated yet: the key sweep fails on a missing table, as on a broken database
    s3 = S3Settings()
    ingest = IngestService(client=build_client(s3), buckets=s3.buckets, sessions=session_factory(engine),
                           max_pixels=1_000_000, api_version="test")
    store = ResumableStore(tmp_path / "spool")
    expired = store.create(length=10, expires_at=datetime.now(UTC) - timedelta(hours=1), metadata={},
                           token_sha256=None)
    resumable = ResumableUploads(store=store, ingest=ingest, guard=AbuseGuard(AbuseLimits()), metrics=UploadMetrics(),
                                 max_upload_bytes=100, expiry=timedelta(hours=1))
    with caplog.at_level(logging.ERROR, logger="ingest_api.app"):
        assert sweep_once(resumable, ingest) == (1, 0)  # the other step still ran
    assert "Idempotency-Key rows failed" in caplog.text
    assert expired.id not in [state.id for state in store.all()]

    upgrade(url)  # the database is back, holding a key past its time to live
    long_ago = datetime.now(UTC) - ingest.idempotency_ttl - timedelta(minutes=1)
    with ingest.sessions() as session:
        event = repository.create_event(session=session, name="sweep", lat=1.0, lon=2.0, radius_m=10,
                                        starts_at=long_ago, ends_at=long_ago + timedelta(days=2))
        repository.open_submission_for_key(session=session, event_id=event.id, idempotency_key="k" * 16,
                                           request_sha256="a" * 64, now=long_ago, ttl=ingest.idempotency_ttl)
    assert sweep_once(resumable, ingest) == (0, 1)
    engine.dispose()
