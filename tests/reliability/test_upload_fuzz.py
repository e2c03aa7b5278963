"""Mutated real photos posted to the upload endpoint: stored (201) or refused with a clear JSON error, never a 5xx.

The same mutations as the extraction fuzz (flips, truncations, spliced EXIF, huge declared dimensions) on real
JPEG, PNG, WebP and HEIC files, through real HTTP into the real S3 server.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

from tests.reliability.conftest import ApiUnderTest
from tests.reliability.mutations import EXIF_DONORS, HEIF_SEEDS, SMALL_SEEDS, load, mutated
from tests.reliability.nightly import skip_unless_slow_selected

pytestmark = pytest.mark.integration
REFUSALS = {400, 413, 415, 422}
_BOUNDED = settings(derandomize=True, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def check_upload(client: httpx.Client, api: ApiUnderTest, data: bytes) -> None:
    response = client.post(f"{api.base_url}/v1/events/{api.event_id}/photos", content=data,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code == 201:
        assert len(response.json()["sha256"]) == 64
        return
    assert response.status_code in REFUSALS, response.status_code
    error = response.json()
    assert error["code"] and error["message"], error


def _fuzz(api: ApiUnderTest, shared_data: Path, max_examples: int) -> None:
    seeds = load(shared_data, SMALL_SEEDS + HEIF_SEEDS)
    with httpx.Client(timeout=60) as client:

        @settings(_BOUNDED, max_examples=max_examples)
        @given(mutated(seeds, load(shared_data, EXIF_DONORS)))
        def run(data: bytes) -> None:
            check_upload(client, api, data)

        run()


def test_mutated_uploads_never_break_the_api(load_api: ApiUnderTest, shared_data: Path) -> None:
    _fuzz(load_api, shared_data, max_examples=100)


@pytest.mark.slow
def test_mutated_uploads_nightly(request: pytest.FixtureRequest, load_api: ApiUnderTest, shared_data: Path) -> None:
    skip_unless_slow_selected(request)
    _fuzz(load_api, shared_data, max_examples=10_000)
