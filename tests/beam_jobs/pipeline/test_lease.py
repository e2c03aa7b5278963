"""The extraction lease: pure take/renew/release rules, and exclusivity on the real S3 server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio

from beam_jobs.pipeline.catalog import load_state
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.lease import (
    LEASE_KEY,
    ExtractionLease,
    LeaseHeld,
    LeaseHolder,
    claimed,
    released,
)
from beam_jobs.pipeline.settings import ExtractSettings
from infra.storage.conditional import read_snapshot
from tests.beam_jobs.pipeline.conftest import put_evidence

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=2)
ALICE = LeaseHolder("run-alice", "host-a", 11)
BOB = LeaseHolder("run-bob", "host-b", 22)


def test_a_free_lease_is_taken_until_now_plus_ttl() -> None:
    document = claimed(None, ALICE, NOW, TTL)
    assert document == {"holder": "run-alice", "host": "host-a", "pid": 11, "expires_at": (NOW + TTL).isoformat()}
    after_release = released(document, ALICE, NOW)
    assert after_release["holder"] is None
    assert claimed(after_release, BOB, NOW, TTL)["holder"] == "run-bob"


def test_another_holders_live_lease_is_refused_with_its_holder_named() -> None:
    held = claimed(None, ALICE, NOW, TTL)
    with pytest.raises(LeaseHeld, match="run-alice on host-a, pid 11"):
        claimed(held, BOB, NOW + TTL - timedelta(seconds=1), TTL)


def test_an_expired_lease_is_taken_over_and_the_holder_renews_its_own() -> None:
    held = claimed(None, ALICE, NOW, TTL)
    assert claimed(held, BOB, NOW + TTL + timedelta(seconds=1), TTL)["holder"] == "run-bob"
    renewed = claimed(held, ALICE, NOW + TTL / 2, TTL)
    assert renewed["expires_at"] == (NOW + TTL / 2 + TTL).isoformat()


def test_releasing_leaves_another_holders_lease_alone() -> None:
    held = claimed(None, BOB, NOW, TTL)
    assert released(held, ALICE, NOW) == held


def _fixed(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


def _race_to_take(leases: list[ExtractionLease]) -> list[str]:
    """Enter every lease from its own thread, all released at once; "held" or "refused" for each."""
    start = threading.Barrier(len(leases))
    outcomes: list[str] = []

    def take(lease: ExtractionLease) -> None:
        start.wait()
        try:
            lease.__enter__()
            outcomes.append("held")
        except LeaseHeld:
            outcomes.append("refused")

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_of_launches_racing_for_a_free_lease_exactly_one_wins(s3_client: Minio, versioned_bucket: str) -> None:
    for round_number in range(8):
        leases = [ExtractionLease(s3_client, versioned_bucket, LeaseHolder(f"run-{round_number}-{n}", "h", n),
                                  ttl_s=60) for n in range(3)]
        outcomes = _race_to_take(leases)
        assert sorted(outcomes) == ["held", "refused", "refused"]
        for lease in leases:  # releasing a lease one does not hold changes nothing
            lease.__exit__(None, None, None)
        assert read_snapshot(s3_client, versioned_bucket, LEASE_KEY).document["holder"] is None  # type: ignore[index]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_holder_that_stopped_renewing_finds_its_lease_taken_over(s3_client: Minio, versioned_bucket: str) -> None:
    # Alice's clock is stuck at NOW, so her renewals keep her lease ending at NOW + 5 s; Bob lives a minute later.
    with ExtractionLease(s3_client, versioned_bucket, ALICE, ttl_s=5, clock=_fixed(NOW)) as alice:
        with pytest.raises(LeaseHeld):
            ExtractionLease(s3_client, versioned_bucket, BOB, ttl_s=5, clock=_fixed(NOW)).__enter__()
        with ExtractionLease(s3_client, versioned_bucket, BOB, ttl_s=5, clock=_fixed(NOW + timedelta(minutes=1))):
            deadline = time.monotonic() + 20
            while not alice.lost and time.monotonic() < deadline:
                time.sleep(0.1)
            assert alice.lost
            assert read_snapshot(s3_client, versioned_bucket, LEASE_KEY).document["holder"] == "run-bob"  # type: ignore[index]
    # Alice's release did not free Bob's lease; Bob's did.
    assert read_snapshot(s3_client, versioned_bucket, LEASE_KEY).document["holder"] is None  # type: ignore[index]


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_a_launch_is_refused_while_another_holds_the_lease_and_runs_after(
    make_settings: Callable[[str, str], ExtractSettings], job_client: Minio, random_bytes: bytes
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings(f"lease-ev-{suffix}", f"lease-cat-{suffix}")
    put_evidence(job_client, settings.s3.buckets.evidence, name=f"lease-{suffix}", data=random_bytes)
    catalog = settings.s3.buckets.catalog
    with ExtractionLease(job_client, catalog, BOB, ttl_s=60):
        with pytest.raises(LeaseHeld, match="run-bob"):
            run_extract(settings, runner="DirectRunner")
    assert load_state(job_client, catalog).runs == ()
    summary = run_extract(settings, runner="DirectRunner")
    assert summary.run_id is not None and summary.manifests == 1
    assert load_state(job_client, catalog).runs == (summary.run_id,)
    lease = read_snapshot(job_client, catalog, LEASE_KEY).document
    assert lease is not None and lease["holder"] is None and lease["released_by"] == summary.run_id
