"""The S3 server dies mid-run and comes back: clients see retryable errors, nothing acknowledged is lost.

A separate SeaweedFS server on its own port range (never the session one) backs a separate API. Concurrent
clients upload distinct real-size photos; once an eighth are acknowledged the server is stopped under them,
kept down for 3 s while the API answers 503 (or drops connections), then restarted on the same data folder.
The clients retry what the API calls retryable; afterwards every acknowledged photo, including those
acknowledged before the outage, is re-hashed from S3.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import s3server
from infra.storage.client import build_client
from infra.storage.config import S3Settings
from tests.reliability.conftest import serve_api
from tests.reliability.evidence_check import assert_acknowledged_are_stored
from tests.reliability.nightly import skip_unless_slow_selected
from tests.reliability.workload import PhotoSet, UploadOutcome, upload_all

pytestmark = pytest.mark.integration
# Longer than the API's own S3 retries can bridge (urllib3, 5 tries with backoff 0.2 s: ~6 s of refused
# connections), so uploads must fail over to the witness as retryable errors; a shorter outage is simply masked.
OUTAGE_S = 8.0


@pytest.fixture
def own_s3(tmp_path: Path) -> Iterator[tuple[Path, S3Settings]]:
    data_dir = tmp_path / "s3"
    port = s3server.find_free_port_base()
    settings = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
    s3server.start(data_dir, settings, s3_port=port)
    try:
        yield data_dir, settings
    finally:
        s3server.stop(data_dir)


def _outage_run(tmp_path: Path, own_s3: tuple[Path, S3Settings], photos: PhotoSet, clients: int) -> None:
    data_dir, s3 = own_s3
    port = int(s3.endpoint.rsplit(":", 1)[1])
    acked_before_outage: list[UploadOutcome] = []
    eighth = threading.Event()
    lock = threading.Lock()
    done: list[UploadOutcome] = []

    def on_result(outcome: UploadOutcome) -> None:
        with lock:
            done.append(outcome)
            if len(done) >= len(photos) // 8:
                eighth.set()

    with serve_api(s3, tmp_path / "api") as api:
        results: list[UploadOutcome] = []
        runner = threading.Thread(
            target=lambda: results.extend(upload_all(api.base_url, api.event_id, photos, clients=clients,
                                                     deadline_s=240, on_result=on_result)))
        runner.start()
        assert eighth.wait(120), "uploads did not start"
        with lock:
            acked_before_outage = [o for o in done if o.status == 201]
        assert s3server.stop(data_dir), "the test's S3 server was not running"
        stopped_at = time.monotonic()
        time.sleep(OUTAGE_S)  # uploads in flight fail and are retried against a dead store meanwhile
        down_s = time.monotonic() - stopped_at
        s3server.start(data_dir, s3, s3_port=port)
        restarted_at = time.monotonic()
        runner.join(300)
        recovered_s = time.monotonic() - restarted_at
        assert not runner.is_alive()

    failures = [f for o in results for f in o.retryable_failures]
    assert failures, "the outage was not noticed by any client"
    assert all(f.startswith(("503", "429")) or f.endswith("Error") for f in failures), set(failures)
    statuses = sorted({o.status or 0 for o in results})
    assert statuses == [201], f"after the restart every retried upload must succeed: {statuses}"
    client = build_client(s3)
    assert_acknowledged_are_stored(client, s3.buckets.evidence, api.event_id, results)
    before = {o.sha256 for o in acked_before_outage}
    assert before <= {o.sha256 for o in results}
    duplicates = sum(bool(o.receipt and o.receipt["duplicate"]) for o in results)
    print(f"\nS3 outage: {len(photos)} photos, {clients} clients, {len(before)} acknowledged before the stop, "
          f"down {down_s:.1f} s, all acknowledged {recovered_s:.1f} s after restart; retryable failures seen: "
          f"{dict(Counter(failures))}; receipts saying duplicate: {duplicates}")


def test_s3_outage_mid_upload_loses_nothing(
    tmp_path: Path, own_s3: tuple[Path, S3Settings], photo_bases: PhotoSet
) -> None:
    # Enough photos that most are still to come when the server stops: SeaweedFS keeps serving ~1 s after the stop
    # signal, and with 32 photos cut at a quarter a quiet machine had sometimes acknowledged all by then (CI).
    _outage_run(tmp_path, own_s3, PhotoSet(photo_bases.bases, 64, "outage-ci"), clients=16)


@pytest.mark.slow
def test_s3_outage_under_64_clients(
    request: pytest.FixtureRequest, tmp_path: Path, own_s3: tuple[Path, S3Settings], photo_bases: PhotoSet
) -> None:
    skip_unless_slow_selected(request)
    _outage_run(tmp_path, own_s3, PhotoSet(photo_bases.bases, 192, "outage-slow"), clients=64)
