"""SIGKILL the API after a photo's original and manifest are stored in S3, before its upload row and receipt.

No timer reaches this window reliably (two small database writes), so `witness serve` is started with
`WITNESS_CRASH_AT=ingest-manifest-stored` (`infra.faults`) and kills itself there. The witness has no answer, so
it retries as its client would: a tus client resumes the same upload (HEAD, re-send the last chunk); a plain
client repeats the same POST. After a restart without the variable the retry must get a receipt, the original
must be stored once (one version of its SHA-256 key, re-hashed), and photos acknowledged before the crash must
still be there. What the extraction job then sees is what `list_manifest_keys` lists: one manifest key per
(event, submission, photo), read at its latest version.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from minio import Minio
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from beam_jobs.pipeline.manifests import list_manifest_keys, parse_manifest
from infra.faults import CrashPoint, crash_environment
from infra.storage.config import S3Settings
from infra.storage.evidence import manifest_key
from infra.storage.objects import read_bytes
from ingest_api.settings import ApiSettings
from tests.ingest_api.conftest import api_settings, create_test_event, open_submission
from tests.ingest_api.tus_helpers import head, status, uploader
from tests.reliability.api_process import api_process, assert_stored_once, sha256_hex
from tests.reliability.workload import with_nonce

pytestmark = pytest.mark.integration
PHOTO = "exif/android_nexus4_stale_gps.jpg"  # 2.8 MB, the largest real photo in shared/data
CRASH = crash_environment(CrashPoint.INGEST_MANIFEST_STORED)


@pytest.fixture()
def settings_and_event(s3_settings: S3Settings, tmp_path: Path) -> tuple[ApiSettings, str]:
    settings = api_settings(s3_settings, tmp_path / "state")
    return settings, create_test_event(settings)


def manifests_of(client: Minio, bucket: str, event_id: str, data: bytes) -> list[str]:
    """The manifest keys of `data` in `event_id` that the extraction job would list."""
    suffix = f"/{sha256_hex(data)}.json"
    return [key for key in list_manifest_keys(client, bucket, prefix=f"manifests/{event_id}/") if key.endswith(suffix)]


def manifest_versions(client: Minio, bucket: str, key: str) -> list[dict[str, object]]:
    """Every stored version of `key`, oldest first."""
    found = [item for item in client.list_objects(bucket, prefix=key, include_version=True) if item.object_name == key]
    found.sort(key=lambda item: item.last_modified)
    documents = []
    for item in found:
        response = client.get_object(bucket, key, version_id=item.version_id)
        try:
            documents.append(json.loads(response.read()))
        finally:
            response.close()
            response.release_conn()
    return documents


def post_photo(base_url: str, event_id: str, data: bytes, token: str | None = None,
               idempotency_key: str | None = None) -> httpx.Response:
    headers = ({"Content-Type": "image/jpeg"} | ({"X-Submission-Token": token} if token else {})
               | ({"Idempotency-Key": idempotency_key} if idempotency_key else {}))
    return httpx.post(f"{base_url}/v1/events/{event_id}/photos", content=data, headers=headers, timeout=60)


def test_a_tus_upload_killed_before_its_receipt_is_stored_once_after_the_resume(
    settings_and_event: tuple[ApiSettings, str], s3_client: Minio, shared_data: Path, tmp_path: Path
) -> None:
    settings, event_id = settings_and_event
    bucket, log = settings.s3.buckets.evidence, tmp_path / "api.log"
    photo = (shared_data / PHOTO).read_bytes()
    before, data = with_nonce(photo, f"acked-{tmp_path.name}"), with_nonce(photo, f"crash-{tmp_path.name}")
    with api_process(settings, event_id, log) as running:
        token = open_submission(running.api)["submission_token"]
        acknowledged = post_photo(running.api.base_url, event_id, before, token)
        assert acknowledged.status_code == 201, acknowledged.text
    with api_process(settings, event_id, log, CRASH) as crashing:
        upload = uploader(crashing.api, data, token)
        with pytest.raises((TusCommunicationError, TusUploadFailed)):  # tuspy's wrappers of the dropped connection
            upload.upload()
        url = str(upload.url)
        assert crashing.process.wait(timeout=30) < 0 and f"crash point {CRASH['WITNESS_CRASH_AT']}" in log.read_text()
    [key] = manifests_of(s3_client, bucket, event_id, data)
    assert len(manifest_versions(s3_client, bucket, key)) == 1, "the manifest was stored before the kill"

    with api_process(settings, event_id, log) as running:
        assert status(url)["state"] != "stored", "no receipt was recorded before the kill"
        offset = int(head(url).headers["Upload-Offset"])
        assert offset < len(data), "HEAD must not say complete without a receipt"
        resumed = uploader(running.api, data, token, url=url)
        resumed.upload()
        document = status(url)
    assert document["state"] == "stored", document
    receipt = document["receipt"]
    assert receipt["duplicate"] is False, "these bytes had never been acknowledged to this submission"
    assert assert_stored_once(s3_client, bucket, data, receipt) == 2
    assert assert_stored_once(s3_client, bucket, before, acknowledged.json()) == 1, "the earlier photo is intact"

    # The job lists one key for the photo and reads its latest version, the one the receipt and row describe.
    assert manifests_of(s3_client, bucket, event_id, data) == [key]
    first, latest = manifest_versions(s3_client, bucket, key)
    assert {name for name in first if first[name] != latest[name]} <= {"received_at"}
    pending = parse_manifest(key, read_bytes(s3_client, bucket, key))
    assert pending.received_at == datetime.fromisoformat(receipt["received_at"])
    print(f"\ntus: killed after the manifest; resumed from {offset} of {len(data)}; one manifest key, versions "
          f"received_at {first['received_at']} (unacknowledged) then {latest['received_at']} (receipt)")


def test_a_plain_upload_killed_before_its_receipt_is_stored_once_after_the_retry(
    settings_and_event: tuple[ApiSettings, str], s3_client: Minio, shared_data: Path, tmp_path: Path
) -> None:
    """A first upload without a token, sent with an `Idempotency-Key`: the retry carries the same key, so it reaches
    the submission the killed attempt opened (bound to the key before anything was stored) and gets its token."""
    settings, event_id = settings_and_event
    bucket, log = settings.s3.buckets.evidence, tmp_path / "api.log"
    photo = (shared_data / PHOTO).read_bytes()
    data, keyless = with_nonce(photo, f"plain-{tmp_path.name}"), with_nonce(photo, f"keyless-{tmp_path.name}")
    key = str(uuid.uuid4())
    with api_process(settings, event_id, log, CRASH) as crashing:
        with pytest.raises(httpx.TransportError):
            post_photo(crashing.api.base_url, event_id, data, idempotency_key=key)
        assert crashing.process.wait(timeout=30) < 0
    [unacknowledged] = manifests_of(s3_client, bucket, event_id, data)

    with api_process(settings, event_id, log) as running:
        retried = post_photo(running.api.base_url, event_id, data, idempotency_key=key)
        token = retried.json().get("submission_token", "")  # the token of the submission the killed attempt opened
        mine = httpx.get(f"{running.api.base_url}/v1/receipts/{token}", timeout=30)
        # A client without the header, whose first answer is lost (no crash needed): its retry is a new upload.
        keyless_answers = [post_photo(running.api.base_url, event_id, keyless) for _ in range(2)]
    assert retried.status_code == 201, retried.text
    receipt = retried.json()
    assert receipt["duplicate"] is False and receipt["submission_token"], "no receipt had been given before the kill"
    assert assert_stored_once(s3_client, bucket, data, receipt) == 2
    served = manifest_key(event_id=event_id, submission_id=receipt["submission_id"], sha256=receipt["sha256"])
    assert manifests_of(s3_client, bucket, event_id, data) == [served] == [unacknowledged]
    assert mine.status_code == 200, mine.text
    assert (mine.json()["submission_id"], [file["sha256"] for file in mine.json()["files"]]) == (
        receipt["submission_id"], [receipt["sha256"]]), "the witness can read (and withdraw) the one copy"

    # Without the key each POST opens its own submission: the photo is listed (and processed) once per POST, and
    # the witness holds only the last token. This is the documented cost of not sending the header.
    assert [answer.status_code for answer in keyless_answers] == [201, 201]
    keyless_submissions = {answer.json()["submission_id"] for answer in keyless_answers}
    assert len(keyless_submissions) == 2 and len(manifests_of(s3_client, bucket, event_id, keyless)) == 2
    print(f"\nplain POST with Idempotency-Key: killed after the manifest {unacknowledged}; the retry was acknowledged "
          f"under the same submission; one manifest key. Without the key: {len(keyless_submissions)} submissions.")
