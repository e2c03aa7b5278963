"""Retention end to end on the real S3 server: a due event's evidence is erased and audited, a held one is kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from minio import Minio
from PIL import Image

from infra.storage.evidence import original_key
from ingest_api.db import repository
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Role
from ingest_api.governance.retention import RetentionJob
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
