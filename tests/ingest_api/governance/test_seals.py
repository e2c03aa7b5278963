"""Sealing the audit chain into the real S3 server under object lock, and reading seals back suspiciously."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.error import S3Error
from minio.retention import COMPLIANCE, Retention
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from infra.storage.config import S3Settings
from ingest_api.db.session import build_engine
from ingest_api.governance.audit import AuditRecord, verify_chain
from ingest_api.governance.audit_store import AuditLog, audit_metadata
from ingest_api.governance.seals import (
    SealTarget,
    load_seals,
    seal_key,
    seal_pending,
    seal_periodically,
    sealed_through,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    audit_metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def target(s3_client: Minio) -> SealTarget:
    bucket = f"audit-{time.time_ns()}"
    s3_client.make_bucket(bucket, object_lock=True)
    return SealTarget(bucket=bucket, retain_days=1, max_entries=4)


def _fill(log: AuditLog, n: int) -> None:
    for i in range(n):
        log.append(AuditRecord("u-1", "investigator", "search", case_id="c-1", parameters={"i": i}, result_ids=["p"]))


def test_catalog_bucket_cannot_hold_locked_objects(s3_client: Minio, s3_settings: S3Settings) -> None:
    # Why seals do not go to `catalog`: it was created without object lock, and S3 refuses a retention there.
    until = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    with pytest.raises(S3Error) as refused:
        s3_client.put_object(
            s3_settings.buckets.catalog, "audit/x.json", io.BytesIO(b"{}"), 2, retention=Retention(COMPLIANCE, until)
        )
    assert refused.value.code == "InvalidRequest"


def test_seals_are_locked_incremental_and_verify(s3_client: Minio, engine: Engine, target: SealTarget) -> None:
    log = AuditLog(engine)
    _fill(log, 6)
    first = seal_pending(log, s3_client, target)
    assert [(s.first_seq, s.last_seq) for s in first] == [(1, 4), (5, 6)]
    assert seal_pending(log, s3_client, target) == []
    _fill(log, 3)
    assert [(s.first_seq, s.last_seq) for s in seal_pending(log, s3_client, target)] == [(7, 9)]
    assert sealed_through(s3_client, target) == 9

    key = seal_key(target, 1, 4)
    stat = s3_client.stat_object(target.bucket, key)
    retention = s3_client.get_object_retention(target.bucket, key, version_id=stat.version_id)
    assert retention is not None and retention.mode == COMPLIANCE
    with pytest.raises(S3Error) as refused:
        s3_client.remove_object(target.bucket, key, version_id=stat.version_id)
    assert refused.value.code == "AccessDenied"

    scan = load_seals(s3_client, target)
    assert scan.problems == () and len(scan.seals) == 3
    report = verify_chain(log.entries(), scan.seals)
    assert report.ok and report.sealed_through == 9


def test_hidden_and_forged_seals_do_not_hide_a_rewrite(s3_client: Minio, engine: Engine, target: SealTarget) -> None:
    log = AuditLog(engine)
    _fill(log, 4)
    seal_pending(log, s3_client, target)
    key = seal_key(target, 1, 4)

    # An intruder rewrites entry 2 consistently in the database...
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_entries_no_update"))
        connection.execute(text("UPDATE audit_entries SET result_ids = '[]' WHERE seq = 2"))
    rewritten = log.entries()
    # ...tries to delete the seal (a delete marker: allowed under lock) and to replace it with a forged version.
    s3_client.remove_object(target.bucket, key)
    forged = {
        "format": "witness-audit-seal/1",
        "first_seq": 1,
        "last_seq": 1,
        "head_hash": "0" * 64,
        "sealed_at": "2026-01-01T00:00:00.000000Z",
        "entries": [],
    }
    body = json.dumps(forged).encode()
    s3_client.put_object(target.bucket, key, io.BytesIO(body), len(body))

    scan = load_seals(s3_client, target)
    assert len(scan.seals) == 1 and scan.seals[0].last_seq == 4  # the oldest, locked version is the one used
    assert any("disagree" in problem for problem in scan.problems)
    found = {(p.seq, p.kind) for p in verify_chain(rewritten, scan.seals).problems}
    assert (2, "altered") in found and (2, "differs_from_seal") in found


def test_deleted_seal_is_reported(s3_client: Minio, engine: Engine, target: SealTarget) -> None:
    log = AuditLog(engine)
    _fill(log, 2)
    seal_pending(log, s3_client, target)
    s3_client.remove_object(target.bucket, seal_key(target, 1, 2))
    scan = load_seals(s3_client, target)
    assert [s.last_seq for s in scan.seals] == [2]
    assert len(scan.problems) == 1 and "delete marker" in scan.problems[0]


def test_cli_audit_verify_exit_codes(
    s3_client: Minio, s3_settings: S3Settings, engine: Engine, target: SealTarget, tmp_path: Path
) -> None:
    from infra.cli import app

    env = {
        "WITNESS_STATE_DIR": str(tmp_path),
        "WITNESS_DATABASE_URL": str(engine.url),
        "WITNESS_S3__ENDPOINT": s3_settings.endpoint,
        "WITNESS_S3__BUCKETS__AUDIT": target.bucket,
    }
    log = AuditLog(engine)
    _fill(log, 5)
    seal_pending(log, s3_client, SealTarget(bucket=target.bucket, retain_days=1))
    intact = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert intact.exit_code == 0, intact.output
    assert "audit chain intact" in intact.output
    with engine.begin() as connection:
        connection.execute(text("DROP TRIGGER audit_entries_no_delete"))
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 5"))
    truncated = CliRunner().invoke(app, ["audit", "verify"], env=env)
    assert truncated.exit_code == 1 and "truncated" in truncated.output
    no_table = CliRunner().invoke(
        app, ["audit", "verify"], env=env | {"WITNESS_DATABASE_URL": "sqlite:///" + str(tmp_path / "none.db")}
    )
    assert no_table.exit_code == 2 and "witness db upgrade" in no_table.output


def test_periodic_sealer_seals_new_entries_until_stopped(s3_client: Minio, engine: Engine, target: SealTarget) -> None:
    log = AuditLog(engine)
    stop = threading.Event()
    sealer = threading.Thread(
        target=seal_periodically, args=(log, s3_client, target), kwargs={"interval_s": 0.05, "stop": stop}
    )
    sealer.start()
    try:
        _fill(log, 3)
        deadline = time.monotonic() + 20
        while sealed_through(s3_client, target) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        sealer.join(timeout=10)
    assert not sealer.is_alive() and sealed_through(s3_client, target) == 3
