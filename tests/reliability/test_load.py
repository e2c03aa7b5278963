"""64 concurrent witnesses upload distinct real-size photos: every acknowledgement is backed by intact bytes in S3.

CI: 64 clients x 1 photo each (64 distinct 3-6 MB JPEGs, ~290 MB). `-m slow`: 64 clients x 4 photos each.
"""

from __future__ import annotations

import pytest
from minio import Minio

from tests.reliability.conftest import ApiUnderTest
from tests.reliability.evidence_check import assert_acknowledged_are_stored
from tests.reliability.nightly import skip_unless_slow_selected
from tests.reliability.workload import MB, PhotoSet, upload_all

pytestmark = pytest.mark.integration
CLIENTS = 64


def _run(api: ApiUnderTest, s3_client: Minio, photos: PhotoSet) -> None:
    outcomes = upload_all(api.base_url, api.event_id, photos, clients=CLIENTS, deadline_s=240)
    statuses = sorted({outcome.status or 0 for outcome in outcomes})
    assert statuses == [201], f"not every upload was acknowledged: statuses {statuses}"
    assert len({outcome.sha256 for outcome in outcomes}) == len(photos), "the workload must be distinct files"
    assert not any(outcome.receipt and outcome.receipt["duplicate"] for outcome in outcomes)
    checked = assert_acknowledged_are_stored(s3_client, api.settings.s3.buckets.evidence, api.event_id, outcomes)
    assert checked == photos.total_bytes and checked >= len(photos) * 3 * MB


def test_64_concurrent_clients_lose_nothing(load_api: ApiUnderTest, s3_client: Minio, photo_bases: PhotoSet) -> None:
    _run(load_api, s3_client, PhotoSet(photo_bases.bases, CLIENTS, "load-ci"))


@pytest.mark.slow
def test_64_clients_sustained(
    request: pytest.FixtureRequest, load_api: ApiUnderTest, s3_client: Minio, photo_bases: PhotoSet
) -> None:
    skip_unless_slow_selected(request)
    _run(load_api, s3_client, PhotoSet(photo_bases.bases, CLIENTS * 4, "load-slow"))
