"""Signed receipts and withdrawal, through real HTTP against the real S3 server (object lock, legal hold)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from minio import Minio
from minio.error import S3Error
from PIL import Image
from tusclient.exceptions import TusCommunicationError

from infra.storage.evidence import original_key
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.tables import LegalHold
from ingest_api.services import receipts
from tests.ingest_api.conftest import RunningApi, open_submission
from tests.ingest_api.tus_helpers import uploader, url_of

pytestmark = pytest.mark.integration


def _unique_jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _upload(api: RunningApi, data: bytes, token: str) -> dict[str, object]:
    upload = uploader(api, data, token)
    upload.upload()
    receipt: dict[str, object] = httpx.get(url_of(upload)).json()["receipt"]
    return receipt


def _versions(client: Minio, api: RunningApi, key: str) -> list[str | None]:
    bucket = api.settings.s3.buckets.evidence
    return [o.version_id for o in client.list_objects(bucket, prefix=key, include_version=True) if o.object_name == key]


def test_receipt_lists_every_file_and_is_signed(api: RunningApi) -> None:
    opened = open_submission(api)
    photos = [_unique_jpeg(seed) for seed in (101, 102)]
    for photo in photos:
        _upload(api, photo, opened["submission_token"])
    response = httpx.get(f"{api.base_url}{opened['receipt_url']}")
    assert response.status_code == 200
    document = response.json()
    assert [f["sha256"] for f in document["files"]] == [hashlib.sha256(p).hexdigest() for p in photos]
    assert {f["status"] for f in document["files"]} == {"stored"} and document["withdrawn_at"] is None
    key = api.settings.receipt_key.get_secret_value().encode()
    assert receipts.verify(document, key=key)
    assert not receipts.verify({**document, "event_id": "forged"}, key=key)
    assert not receipts.verify(document, key=b"another key")


def test_unknown_receipt_token_is_a_clear_404(api: RunningApi) -> None:
    response = httpx.get(f"{api.base_url}/v1/receipts/nope")
    assert response.status_code == 404 and response.json()["code"] == "unknown_receipt"


def test_withdrawal_deletes_own_originals_but_keeps_shared_ones(api: RunningApi, s3_client: Minio) -> None:
    own, shared = _unique_jpeg(201), _unique_jpeg(202)
    witness, other = open_submission(api), open_submission(api)
    own_receipt = _upload(api, own, witness["submission_token"])
    _upload(api, shared, witness["submission_token"])
    _upload(api, shared, other["submission_token"])
    own_key, shared_key = original_key(str(own_receipt["sha256"])), original_key(hashlib.sha256(shared).hexdigest())
    assert _versions(s3_client, api, own_key) and _versions(s3_client, api, shared_key)

    response = httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60)
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["withdrawn_at"] and {f["status"] for f in document["files"]} == {"withdrawn"}
    assert _versions(s3_client, api, own_key) == []  # every version gone, not just hidden by a delete marker
    assert _versions(s3_client, api, shared_key)  # the other witness's photo stays
    manifests = list(s3_client.list_objects(api.settings.s3.buckets.evidence, prefix="manifests/", recursive=True))
    assert not any(witness["submission_id"] in (m.object_name or "") for m in manifests)
    again = httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60)
    assert again.status_code == 200  # idempotent
    refused = uploader(api, _unique_jpeg(203), witness["submission_token"])
    with pytest.raises(TusCommunicationError, match="410"):
        refused.upload()


def test_withdrawal_is_refused_while_a_legal_hold_exists(api: RunningApi, s3_client: Minio) -> None:
    photo = _unique_jpeg(301)
    witness = open_submission(api)
    receipt = _upload(api, photo, witness["submission_token"])
    bucket, key = api.settings.s3.buckets.evidence, original_key(str(receipt["sha256"]))
    version = _versions(s3_client, api, key)[0]
    s3_client.enable_object_legal_hold(bucket, key, version)
    try:
        response = httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60)
        assert response.status_code == 409 and response.json()["code"] == "legal_hold"
        assert "legal hold" in response.json()["message"]
        assert _versions(s3_client, api, key) == [version]
        assert httpx.get(f"{api.base_url}{witness['receipt_url']}").json()["withdrawn_at"] is None
    finally:
        s3_client.disable_object_legal_hold(bucket, key, version)
    assert httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60).status_code == 200
    with pytest.raises(S3Error):
        s3_client.stat_object(bucket, key)


def test_withdrawal_is_refused_while_the_incident_is_on_legal_hold(api: RunningApi, s3_client: Minio) -> None:
    witness = open_submission(api)
    receipt = _upload(api, _unique_jpeg(302), witness["submission_token"])
    key = original_key(str(receipt["sha256"]))
    engine = build_engine(api.settings.effective_database_url)
    sessions = session_factory(engine)
    with sessions() as session:
        hold = LegalHold(event_id=api.event_id, reason="test: court order", placed_by="supervisor-1",
                         placed_at=datetime.now(UTC))
        session.add(hold)
        session.commit()
        hold_id = hold.id
    try:
        response = httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60)
        assert response.status_code == 409 and response.json()["code"] == "legal_hold"
        assert len(_versions(s3_client, api, key)) == 1
    finally:
        with sessions() as session:
            session.get_one(LegalHold, hold_id).cleared_at = datetime.now(UTC)
            session.commit()
        engine.dispose()
    assert httpx.delete(f"{api.base_url}{witness['receipt_url']}", timeout=60).status_code == 200
