"""tus 1.0 against the running API with the real `tuspy` client: chunks, cut connections, restarts, checksums,
termination and expiry. Receipts are checked against what the S3 server actually holds."""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from minio import Minio
from tusclient.exceptions import TusCommunicationError

from infra.storage.evidence import original_key
from ingest_api.services.resumable_store import ResumableStore
from tests.ingest_api.conftest import RunningApi, api_settings, create_test_event, open_submission, running_api
from tests.ingest_api.tus_helpers import CHUNK, TUS, cut_patch, encode_metadata, head, status, uploader, url_of

pytestmark = pytest.mark.integration
PHOTO = "exif/gaia_nikon_p6000_DSCN0010.jpg"
BIG_PHOTO = "exif/windows_phone_lumia800.jpg"


def _stored_sha256(client: Minio, api: RunningApi, sha256: str) -> str:
    response = client.get_object(api.settings.s3.buckets.evidence, original_key(sha256))
    try:
        return hashlib.sha256(response.read()).hexdigest()
    finally:
        response.close()
        response.release_conn()


def _wait_for_offset(url: str, above: int) -> int:
    """The server notices a dropped connection asynchronously; poll (bounded) until it acknowledged the bytes."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        offset = int(head(url).headers["Upload-Offset"])
        if offset > above:
            return offset
        time.sleep(0.05)
    pytest.fail(f"the server never acknowledged bytes past offset {above}")


def test_options_advertise_the_extensions(api: RunningApi) -> None:
    response = httpx.options(f"{api.base_url}/v1/uploads")
    assert response.status_code == 204
    assert set(response.headers["Tus-Extension"].split(",")) >= {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"].split(",")
    assert int(response.headers["Tus-Max-Size"]) == api.settings.max_upload_bytes


def test_chunked_upload_gives_a_receipt_matching_the_stored_object(
    api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    data = (shared_data / PHOTO).read_bytes()
    assert len(data) > 2 * CHUNK
    token = open_submission(api)["submission_token"]
    upload = uploader(api, data, token)
    upload.upload()
    document = status(url_of(upload))
    assert document["state"] == "stored" and document["offset"] == len(data)
    receipt = document["receipt"]
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest() == _stored_sha256(s3_client, api, receipt["sha256"])
    assert head(url_of(upload)).headers["Upload-Offset"] == str(len(data))


def test_a_dropped_connection_resumes_from_the_acknowledged_offset(
    api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    data = (shared_data / BIG_PHOTO).read_bytes()
    token = open_submission(api)["submission_token"]
    upload = uploader(api, data, token, retries=3, retry_delay=0)
    upload.set_url(upload.create_url())
    cut_patch(url_of(upload), data, offset=0, send=len(data) // 2)
    offset = _wait_for_offset(url_of(upload), above=0)
    assert 0 < offset <= len(data) // 2

    resumed = uploader(api, data, token, url=upload.url, retries=3, retry_delay=0)
    assert resumed.offset == offset  # tuspy asked the server where to continue
    resumed.upload()
    receipt = status(url_of(upload))["receipt"]
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest() == _stored_sha256(s3_client, api, receipt["sha256"])


def test_an_api_restart_mid_upload_resumes(
    api: RunningApi, s3_client: Minio, shared_data: Path, tmp_path: Path
) -> None:
    data = (shared_data / "exif/flickr_sumo_museum_canon_a70.jpg").read_bytes()
    settings = api_settings(api.settings.s3, tmp_path)
    event_id = create_test_event(settings)
    with running_api(settings, event_id) as first:
        token = open_submission(first)["submission_token"]
        upload = uploader(first, data, token)
        upload.upload(stop_at=4 * CHUNK)
        url = url_of(upload)
    assert upload.offset == 4 * CHUNK
    with pytest.raises(httpx.TransportError):
        head(url)  # the API is really down
    with running_api(settings, event_id) as second:
        resumed = uploader(second, data, token, url=url)
        assert resumed.offset == 4 * CHUNK
        resumed.upload()
        receipt = status(url)["receipt"]
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest() == _stored_sha256(s3_client, api, receipt["sha256"])


def test_a_chunk_with_a_wrong_checksum_is_refused_and_not_acknowledged(api: RunningApi, shared_data: Path) -> None:
    data = (shared_data / PHOTO).read_bytes()
    token = open_submission(api)["submission_token"]
    upload = uploader(api, data, token)
    upload.upload(stop_at=CHUNK)
    chunk = data[CHUNK : 2 * CHUNK]
    wrong = base64.b64encode(hashlib.sha256(chunk + b"x").digest()).decode()
    headers = {**TUS, "Upload-Offset": str(CHUNK), "Content-Type": "application/offset+octet-stream"}
    refused = httpx.patch(url_of(upload), content=chunk, headers={**headers, "Upload-Checksum": f"sha256 {wrong}"})
    assert refused.status_code == 460 and refused.json()["code"] == "checksum_mismatch"
    assert head(url_of(upload)).headers["Upload-Offset"] == str(CHUNK)
    right = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    accepted = httpx.patch(url_of(upload), content=chunk, headers={**headers, "Upload-Checksum": f"sha256 {right}"})
    assert accepted.status_code == 204 and accepted.headers["Upload-Offset"] == str(2 * CHUNK)


def test_creation_with_upload_stores_a_small_photo_in_one_request(api: RunningApi, shared_data: Path) -> None:
    data = (shared_data / "exif/png_exif_chunk_gps.png").read_bytes()
    token = open_submission(api)["submission_token"]
    headers = {
        **TUS,
        "Upload-Length": str(len(data)),
        "Upload-Metadata": encode_metadata({"event_id": api.event_id, "submission_token": token, "caption": "a\x00b"}),
        "Content-Type": "application/offset+octet-stream",
    }
    created = httpx.post(f"{api.base_url}/v1/uploads", content=data, headers=headers, timeout=60)
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == str(len(data))
    document = status(f"{api.base_url}{created.headers['Location']}")
    assert document["receipt"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_termination_removes_the_upload(api: RunningApi, shared_data: Path) -> None:
    data = (shared_data / PHOTO).read_bytes()
    upload = uploader(api, data, open_submission(api)["submission_token"])
    upload.upload(stop_at=CHUNK)
    assert httpx.delete(url_of(upload), headers=TUS).status_code == 204
    assert head(url_of(upload)).status_code == 404
    with pytest.raises(TusCommunicationError):
        uploader(api, data, "ignored", url=upload.url)


def test_expired_uploads_are_removed(api: RunningApi, shared_data: Path) -> None:
    data = (shared_data / PHOTO).read_bytes()
    upload = uploader(api, data, open_submission(api)["submission_token"])
    upload.upload(stop_at=CHUNK)
    response = head(url_of(upload))
    expires = datetime.strptime(response.headers["Upload-Expires"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    upload_id = url_of(upload).rsplit("/", 1)[1]
    store = ResumableStore(api.settings.resumable_dir)
    assert upload_id not in store.remove_expired(expires - timedelta(seconds=5), keep_finished_s=0)
    assert upload_id in store.remove_expired(expires + timedelta(seconds=1), keep_finished_s=0)
    assert not store.data_path(upload_id).exists()
    assert head(url_of(upload)).status_code == 404


@pytest.mark.parametrize(
    ("metadata", "code", "status_code"),
    [
        ({}, "missing_metadata", 400),
        ({"submission_token": "not-a-token"}, "bad_token", 401),
    ],
)
def test_creation_needs_a_valid_submission(
    api: RunningApi, metadata: dict[str, str], code: str, status_code: int
) -> None:
    values = {"event_id": api.event_id, **metadata} if metadata else {}
    headers = {**TUS, "Upload-Length": "100", "Upload-Metadata": encode_metadata(values)}
    response = httpx.post(f"{api.base_url}/v1/uploads", headers=headers)
    assert response.status_code == status_code and response.json()["code"] == code


def test_requests_without_tus_resumable_are_refused(api: RunningApi) -> None:
    response = httpx.post(f"{api.base_url}/v1/uploads", headers={"Upload-Length": "10"})
    assert response.status_code == 412 and response.json()["code"] == "tus_version"
