"""Abuse limits and metrics on an API started with tight limits (its own state folder, the shared S3 server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.storage.config import S3Settings
from tests.ingest_api.conftest import RunningApi, api_settings, create_test_event, open_submission, running_api
from tests.ingest_api.tus_helpers import TUS, encode_metadata, uploader

pytestmark = pytest.mark.integration
LIMITS = {
    "per_ip": "40/minute",
    "per_token": "8/minute",
    "max_files_per_submission": 3,
    "max_bytes_per_submission": 500_000,
    "max_open_uploads_per_submission": 2,
}
METRICS_TOKEN = "scraper-token-for-tests"


@pytest.fixture(scope="module")
def tight_api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    settings = api_settings(s3_settings, tmp_path_factory.mktemp("tight-api"), max_upload_bytes=400_000, limits=LIMITS,
                            metrics_token=METRICS_TOKEN)
    with running_api(settings, create_test_event(settings)) as api:
        yield api


def _create(api: RunningApi, token: str, length: int = 1000) -> httpx.Response:
    values = {"event_id": api.event_id, "submission_token": token}
    headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": encode_metadata(values)}
    return httpx.post(f"{api.base_url}/v1/uploads", headers=headers)


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["message"]


def test_a_file_over_the_size_limit_is_refused_at_creation(tight_api: RunningApi) -> None:
    _refused(_create(tight_api, open_submission(tight_api)["submission_token"], 400_001), 413, "too_large")


def test_a_submission_cannot_exceed_its_byte_budget(tight_api: RunningApi) -> None:
    token = open_submission(tight_api)["submission_token"]
    assert _create(tight_api, token, 390_000).status_code == 201
    _refused(_create(tight_api, token, 390_000), 413, "submission_too_large")


def test_unfinished_uploads_per_submission_are_limited(tight_api: RunningApi) -> None:
    token = open_submission(tight_api)["submission_token"]
    assert [_create(tight_api, token).status_code for _ in range(2)] == [201, 201]
    _refused(_create(tight_api, token), 429, "too_many_open_uploads")


def test_files_per_submission_and_requests_per_token_are_limited(tight_api: RunningApi, shared_data: Path) -> None:
    token = open_submission(tight_api)["submission_token"]
    for name in ("exif/png_exif_chunk_gps.png", "exif/gaia_nikon_p6000_DSCN0010.jpg"):
        # the two files cost six requests on the token: two creations, four 64 KiB chunks
        uploader(tight_api, (shared_data / name).read_bytes(), token).upload()
    assert _create(tight_api, token).status_code == 201
    _refused(_create(tight_api, token), 413, "too_many_files")
    limited = _create(tight_api, token)
    _refused(limited, 429, "rate_limited")
    assert limited.headers["Retry-After"]


def test_receipt_routes_count_against_the_submission_token(tight_api: RunningApi) -> None:
    token = open_submission(tight_api)["submission_token"]
    contact = {"name": "A. Witness", "consent": True}
    statuses = [httpx.put(f"{tight_api.base_url}/v1/receipts/{token}/contact", json=contact).status_code
                for _ in range(8)]
    assert statuses == [204] * 8
    for limited in (httpx.put(f"{tight_api.base_url}/v1/receipts/{token}/contact", json=contact),
                    httpx.get(f"{tight_api.base_url}/v1/receipts/{token}")):
        _refused(limited, 429, "rate_limited")
    # Another submission's token has its own budget.
    other = open_submission(tight_api)["submission_token"]
    assert httpx.get(f"{tight_api.base_url}/v1/receipts/{other}").status_code == 200


def test_requests_per_address_are_limited(tight_api: RunningApi) -> None:
    statuses = [httpx.head(f"{tight_api.base_url}/v1/uploads/{'x' * 32}", headers=TUS).status_code for _ in range(45)]
    assert 404 in statuses and statuses[-1] == 429
    response = httpx.post(f"{tight_api.base_url}/v1/events/{tight_api.event_id}/submissions")
    _refused(response, 429, "rate_limited")
    _refused(_post_photo(tight_api, b"\xff\xd8 not even a photo"), 429, "rate_limited")


def test_metrics_need_the_scraper_token_when_one_is_set(tight_api: RunningApi) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {METRICS_TOKEN}"}):
        refused = httpx.get(f"{tight_api.base_url}/metrics", headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"
        assert "witness_upload" not in refused.text


def test_metrics_count_bytes_files_and_failures(tight_api: RunningApi) -> None:
    response = httpx.get(f"{tight_api.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    text = response.text
    assert "witness_upload_bytes_received_total" in text and "witness_upload_files_accepted_total" in text
    assert 'witness_upload_failures_total{reason="too_large"}' in text
    assert "witness_upload_ingest_seconds_count" in text



def _post_photo(api: RunningApi, data: bytes, token: str | None = None) -> httpx.Response:
    headers = {"Content-Type": "image/jpeg", **({"X-Submission-Token": token} if token else {})}
    return httpx.post(f"{api.base_url}/v1/events/{api.event_id}/photos", content=data, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def budget_api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """Tight per-submission limits, generous per-address ones (the tests above spend this address's budget)."""
    settings = api_settings(s3_settings, tmp_path_factory.mktemp("budget-api"), max_upload_bytes=400_000,
                            limits={**LIMITS, "per_ip": "1000/minute"})
    with running_api(settings, create_test_event(settings)) as api:
        yield api


def test_the_plain_photo_post_keeps_the_submission_budget_and_counts_against_the_token(
    budget_api: RunningApi, shared_data: Path
) -> None:
    """The one-request upload is held to the same limits as the resumable one (it used to bypass them all)."""
    token = open_submission(budget_api)["submission_token"]
    photo = (shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes()
    variants = [photo[:-3] + bytes([photo[-3] ^ n]) + photo[-2:] for n in (1, 2, 3)]  # other bytes, same JPEG
    assert _post_photo(budget_api, photo, token).status_code == 201
    again = _post_photo(budget_api, photo, token)
    assert again.status_code == 201 and again.json()["duplicate"] is True, "a retry is not refused by the budget"
    assert [_post_photo(budget_api, v, token).status_code for v in variants[:2]] == [201, 201]
    _refused(_post_photo(budget_api, variants[2], token), 413, "too_many_files")
    # Every request with the token counts: 5 so far, 8 per minute in all.
    statuses = [_post_photo(budget_api, photo, token).status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429], statuses


def test_the_plain_photo_post_respects_the_byte_budget(budget_api: RunningApi, shared_data: Path) -> None:
    token = open_submission(budget_api)["submission_token"]
    photo = (shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes()  # 162 KB; the budget is 500 KB
    padded = [photo + b"\0" * (10_000 + n) for n in (1, 2, 3)]  # 172 KB each: the third passes 500 KB
    assert [_post_photo(budget_api, p, token).status_code for p in padded[:2]] == [201, 201]
    _refused(_post_photo(budget_api, padded[2], token), 413, "submission_too_large")
