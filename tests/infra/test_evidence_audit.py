"""`witness verify` against the real S3 server: ransomware overwrites, deletions, orphans and bad manifests."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from minio import Minio
from rich.console import Console
from typer.testing import CliRunner

from infra.evidence_audit import plan_verification, run_verification, verify_with_progress
from infra.storage.config import S3Settings
from infra.storage.evidence import StoredObject, manifest_key, store_json, store_original

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Scenario:
    bucket: str
    good: StoredObject
    overwritten: StoredObject
    hidden: StoredObject
    destroyed: StoredObject
    never_stored: str
    orphan: StoredObject


def _photo(client: Minio, bucket: str, label: str, *, manifest: bool = True) -> StoredObject:
    data = f"{label}-{time.time_ns()}".encode() * 50
    sha = hashlib.sha256(data).hexdigest()
    stored = store_original(client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="a/b")
    if manifest:
        _manifest(client, bucket, sha, stored.version_id, len(data), label)
    return stored


def _manifest(client: Minio, bucket: str, sha: str, version: str | None, size: int, submission: str) -> None:
    document = {
        "event_id": "e-1",
        "submission_id": submission,
        "sha256": sha,
        "size": size,
        "media_type": "image/jpeg",
        "object_key": f"originals/{sha[:2]}/{sha[2:4]}/{sha}",
        "object_version": version,
        "received_at": datetime(2026, 3, 1, tzinfo=UTC).isoformat(),
    }
    store_json(client, bucket, manifest_key(event_id="e-1", submission_id=submission, sha256=sha), document)


@pytest.fixture
def scenario(s3_client: Minio) -> Iterator[Scenario]:
    # A bucket of our own: locked (versioned) like `evidence`, but without a default retention, so a version can be
    # destroyed for the test; the shared evidence bucket holds other tests' originals without manifests.
    bucket = f"verify-{time.time_ns()}"
    s3_client.make_bucket(bucket, object_lock=True)
    good = _photo(s3_client, bucket, "good")
    overwritten = _photo(s3_client, bucket, "overwritten")
    ransom = b"encrypted by ransomware"
    s3_client.put_object(bucket, overwritten.key, io.BytesIO(ransom), len(ransom))  # a new version, same key
    hidden = _photo(s3_client, bucket, "hidden")
    s3_client.remove_object(bucket, hidden.key)  # delete marker; the version survives
    destroyed = _photo(s3_client, bucket, "destroyed")
    s3_client.remove_object(bucket, destroyed.key, version_id=destroyed.version_id)
    never_stored = hashlib.sha256(b"never uploaded").hexdigest()
    _manifest(s3_client, bucket, never_stored, None, 10, "never")
    orphan = _photo(s3_client, bucket, "orphan", manifest=False)
    store_json(s3_client, bucket, "manifests/e-1/broken/x.json", {"sha256": "not-a-sha"})
    yield Scenario(bucket, good, overwritten, hidden, destroyed, never_stored, orphan)


def test_report_names_every_problem_and_nothing_else(s3_client: Minio, scenario: Scenario) -> None:
    plan = plan_verification(s3_client, scenario.bucket)
    destroyed_size = scenario.destroyed.size
    advanced: list[int] = []
    report = run_verification(s3_client, scenario.bucket, plan, advanced.append)
    found = {(p.kind, p.object_key) for p in report.problems}
    never_key = f"originals/{scenario.never_stored[:2]}/{scenario.never_stored[2:4]}/{scenario.never_stored}"
    assert found == {
        ("overwritten", scenario.overwritten.key),
        ("missing", scenario.hidden.key),
        ("missing", scenario.destroyed.key),
        ("missing", never_key),
        ("orphan", scenario.orphan.key),
        ("bad_manifest", ""),
    }
    details = {(p.kind, p.object_key): p.detail for p in report.problems}
    assert "recorded version is intact" in details[("overwritten", scenario.overwritten.key)]
    assert "restore it" in details[("missing", scenario.hidden.key)]
    destroyed = [p.detail for p in report.problems if p.object_key == scenario.destroyed.key]
    assert len(destroyed) == 2 and any("is gone" in d for d in destroyed)
    assert not any(p.object_key == scenario.good.key for p in report.problems)
    assert report.manifests == 5 and report.originals == 3  # readable manifests; good, overwritten, orphan
    # The destroyed version's bytes are in the plan (the bar completes) but were not hashed.
    assert sum(advanced) == sum(plan.to_hash().values()) == report.bytes_hashed + destroyed_size


def test_an_intact_bucket_is_ok_and_progress_is_printed(s3_client: Minio) -> None:
    bucket = f"verify-ok-{time.time_ns()}"
    s3_client.make_bucket(bucket, object_lock=True)
    for label in ("a", "b", "c"):
        _photo(s3_client, bucket, label)
    output = io.StringIO()
    report = verify_with_progress(s3_client, bucket, Console(file=output, width=120))
    assert report.ok and report.manifests == 3 and report.originals == 3
    assert "every original is intact" in output.getvalue()


def test_cli_exits_non_zero_on_a_damaged_bucket(
    s3_client: Minio, s3_settings: S3Settings, scenario: Scenario, tmp_path: Path
) -> None:
    from infra.cli import app

    env = {
        "WITNESS_STATE_DIR": str(tmp_path),
        "WITNESS_S3__ENDPOINT": s3_settings.endpoint,
        "WITNESS_S3__BUCKETS__EVIDENCE": scenario.bucket,
    }
    result = CliRunner().invoke(app, ["verify"], env=env)
    assert result.exit_code == 1, result.output
    assert "overwritten" in result.output and "orphan" in result.output
