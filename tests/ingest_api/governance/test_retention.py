"""Retention end to end on the real S3 server: a due event's evidence is erased and audited, a held one is kept;
`witness expire` then erases the event's catalog records and the index versions holding them."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pytest
from minio import Minio
from PIL import Image
from typer.testing import CliRunner

from beam_jobs.pipeline.catalog import commit_run, read_committed, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from beam_jobs.records import PHOTO_SCHEMA
from indexers.s3_versions import read_pointer, version_prefix
from infra.cli import app
from infra.storage.client import ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from infra.storage.evidence import original_key
from infra.storage.objects import store_bytes
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Role
from ingest_api.governance.retention import RetentionJob
from ingest_api.settings import ApiSettings
from tests.indexers.real_catalog import photo_rows, synthetic_detections
from tests.ingest_api.conftest import RunningApi
from tests.ingest_api.governance.helpers import client, staff_tokens

pytestmark = pytest.mark.integration


def _unique_jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _versions(s3: Minio, bucket: str, key: str) -> int:
    return sum(1 for item in s3.list_objects(bucket, prefix=key, include_version=True) if item.object_name == key)


def test_expiry_erases_due_events_and_respects_legal_holds(api: RunningApi, s3_client: Minio) -> None:
    engine = build_engine(api.settings.effective_database_url)
    sessions = session_factory(engine)
    past = datetime.now(UTC) - timedelta(days=3)
    with sessions() as session:
        due, held = (repository.create_event(session=session, name=name, lat=1.0, lon=1.0, radius_m=50,
                                             starts_at=past, ends_at=past + timedelta(hours=1), retention_days=1)
                     for name in ("due", "held"))
    receipts = {}
    for event, seed in ((due, 9101), (held, 9102)):
        stored = httpx.post(f"{api.base_url}/v1/events/{event.id}/photos", content=_unique_jpeg(seed), timeout=60)
        assert stored.status_code == 201, stored.text
        receipts[event.id] = stored.json()
    tokens = staff_tokens(api, "retention")
    with client(api, tokens[Role.SUPERVISOR]) as supervisor:
        assert supervisor.put(f"/v1/events/{held.id}/legal-hold", json={"reason": "order 12"}).json()["legal_hold"]
    evidence = api.settings.s3.buckets.evidence
    original = original_key(receipts[due.id]["sha256"])
    manifest = f"manifests/{due.id}/{receipts[due.id]['submission_id']}/{receipts[due.id]['sha256']}.json"
    assert _versions(s3_client, evidence, original) == 1 and _versions(s3_client, evidence, manifest) == 1

    audit = AuditLog(engine)
    job = RetentionJob(client=s3_client, buckets=api.settings.s3.buckets, sessions=sessions, audit=audit)
    mine = frozenset({due.id, held.id})
    assert {o.event_id: o.status for o in job.run(dry_run=True, only=mine)} == {due.id: "due", held.id: "held"}
    outcomes = {o.event_id: o for o in job.run(only=mine)}
    assert outcomes[due.id].status == "erased" and outcomes[due.id].originals == [receipts[due.id]["sha256"]]
    assert outcomes[held.id].status == "held"
    assert _versions(s3_client, evidence, original) == 0 and _versions(s3_client, evidence, manifest) == 0
    held_sha = receipts[held.id]["sha256"]
    assert _versions(s3_client, evidence, original_key(held_sha)) == 1
    erased = [e for e in audit.entries() if e.action == "expire" and f'"event_id":"{due.id}"' in e.parameters]
    assert len(erased) == 1 and list(erased[0].result_ids) == [receipts[due.id]["sha256"]]
    assert [o.event_id for o in job.run(only=mine)] == [held.id]  # erased once; the hold still wins
    refused = httpx.post(f"{api.base_url}/v1/events/{due.id}/photos", content=_unique_jpeg(9103), timeout=60)
    assert refused.status_code == 410
    engine.dispose()


def test_witness_expire_also_erases_catalog_records_and_old_index_versions(
        s3_settings: S3Settings, s3_client: Minio, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    buckets = BucketNames(evidence=f"cx-ev-{tag}", derived=f"cx-der-{tag}", catalog=f"cx-cat-{tag}",
                          audit=f"cx-aud-{tag}")
    settings = ApiSettings.from_mapping({"state_dir": tmp_path, "s3": s3_settings.model_copy(
        update={"buckets": buckets})})
    ensure_buckets(s3_client, settings.s3)
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    past = datetime.now(UTC) - timedelta(days=3)
    with session_factory(engine)() as session:
        events = [repository.create_event(session=session, name=name, lat=1.0, lon=1.0, radius_m=50, starts_at=past,
                                          ends_at=past + timedelta(hours=1), retention_days=days).id
                  for name, days in (("due", 1), ("kept", 365))]
        submissions = [repository.create_submission(session=session, event_id=e).submission.id for e in events]
    names = {"a": 0, "b": 1, "c": 1}  # photo name -> which event and submission
    photos = photo_rows(list(names), run_id="r1")
    photos = photos.set_column(photos.schema.get_field_index("event_id"), "event_id",
                               pa.array([events[i] for i in names.values()]))
    photos = photos.set_column(photos.schema.get_field_index("submission_id"), "submission_id",
                               pa.array([submissions[i] for i in names.values()])).cast(PHOTO_SCHEMA)
    parts = []
    for table, data in (("photos", photos), ("detections", synthetic_detections(list(names), seed=3))):
        key = part_key(run_prefix("r1"), table, 0)
        stored = store_bytes(s3_client, buckets.catalog, key, parquet_bytes(data), PARQUET_TYPE)
        parts.append(PartInfo(table, key, data.num_rows, stored.sha256))
    commit_run(s3_client, buckets.catalog, "r1", parts=parts, manifests=["m-a", "m-b", "m-c"], extracted_by="test")
    env = {"WITNESS_STATE_DIR": str(tmp_path), "WITNESS_S3__ENDPOINT": s3_settings.endpoint,
           **{f"WITNESS_S3__BUCKETS__{name.upper()}": value for name, value in buckets.model_dump().items()}}
    runner = CliRunner()
    assert runner.invoke(app, ["index", "--kind", "face"], env=env).exit_code == 0
    first = read_pointer(s3_client, buckets.catalog, "face") or pytest.fail("nothing published")

    expired = runner.invoke(app, ["expire"], env=env)
    assert expired.exit_code == 0, expired.output
    assert f"{events[0]}: erased" in expired.output and "1 runs replaced" in expired.output, expired.output
    assert set(read_committed(s3_client, buckets.catalog).column("photo_id").to_pylist()) == {"photo-b", "photo-c"}
    served = read_pointer(s3_client, buckets.catalog, "face") or pytest.fail("nothing published")
    assert served.version != first.version
    assert list(s3_client.list_objects(buckets.catalog, prefix=version_prefix("face", first.version),
                                       include_version=True)) == []
    actions = [entry.action for entry in AuditLog(engine).entries()]
    assert actions[-3:] == ["erase_catalog", "erase_index", "erase_index_versions"], actions
    engine.dispose()
