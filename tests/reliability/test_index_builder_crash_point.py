"""SIGKILL the real index builder after the new version's `release.json` is uploaded, before the pointer moves.

No timer reaches this window (one small PUT of `CURRENT.json`), so the builder is started with
`WITNESS_CRASH_AT=index-released-not-pointed` (`infra.faults`) and kills itself there. What it leaves is a
complete, verified version nobody points to. The pointer must still name v1, the API's search service must keep
serving v1 (a fresh one too), a re-run must publish a newer version that is then served, and pruning must never
touch the served version.
"""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

import pytest
from minio import Minio

from indexers import s3_versions
from indexers.index_job import index_catalog
from indexers.prune import prune_versions
from indexers.s3_versions import RELEASE_FILE, read_pointer, version_prefix
from infra.faults import CrashPoint, crash_environment
from infra.storage.config import S3Settings
from infra.storage.objects import read_bytes
from tests.reliability.index_builder import (
    commit,
    nearest,
    serve_two_runs,
    service,
    start_builder,
    unit_vectors,
    version_files,
)

pytestmark = pytest.mark.integration
V1_PHOTOS, V2_PHOTOS = 40, 200
BUILD_TIMEOUT_S = 120.0


def test_a_builder_killed_between_release_and_pointer_leaves_the_old_version_served(
    s3_client: Minio, s3_settings: S3Settings, tmp_path: Path
) -> None:
    bucket = f"idx-crash-{uuid.uuid4().hex[:12]}"
    v1, served, v1_vectors, v2_vectors = serve_two_runs(s3_client, bucket, tmp_path, first=V1_PHOTOS,
                                                        second=V2_PHOTOS, seed=3)
    log = tmp_path / "builder.log"
    crashed = start_builder(s3_settings, bucket, tmp_path / "state", log,
                            crash_environment(CrashPoint.INDEX_RELEASED_NOT_POINTED))
    assert crashed.wait(timeout=BUILD_TIMEOUT_S) == -signal.SIGKILL, log.read_text()[-3000:]
    assert f"crash point {CrashPoint.INDEX_RELEASED_NOT_POINTED.value}" in log.read_text()
    [v2] = set(version_files(s3_client, bucket)) - {v1}
    release = json.loads(read_bytes(s3_client, bucket, version_prefix("face", v2) + RELEASE_FILE))
    assert version_files(s3_client, bucket)[v2] == set(release["files"]) | {RELEASE_FILE}, "v2 is whole"
    assert sorted(release["run_ids"]) == ["r1", "r2"]

    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.version == v1, "the pointer still names v1"
    fresh = service(s3_client, bucket, tmp_path / "fresh-cache")
    assert fresh.refresh() == {"face": v1} and served.refresh() == {"face": v1}
    assert nearest(fresh, v1_vectors[7]) == ("det-a7", v1, V1_PHOTOS)
    assert nearest(served, v1_vectors[8]) == ("det-a8", v1, V1_PHOTOS)
    assert not (tmp_path / "fresh-cache" / "face" / v2).exists(), "nothing of the unpointed version is fetched"

    rerun = start_builder(s3_settings, bucket, tmp_path / "state", log)
    assert rerun.wait(timeout=BUILD_TIMEOUT_S) == 0, log.read_text()[-3000:]
    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.version not in {v1, v2} and pointer.version > v2
    assert fresh.refresh() == {"face": pointer.version} and served.refresh() == {"face": pointer.version}
    assert nearest(fresh, v2_vectors[123]) == ("det-b123", pointer.version, V1_PHOTOS + V2_PHOTOS)
    assert nearest(served, v1_vectors[7]) == ("det-a7", pointer.version, V1_PHOTOS + V2_PHOTOS)

    pruned = prune_versions(s3_client, bucket, "face", gone_submission_ids=())
    assert pruned.current == pointer.version and pointer.version not in pruned.deleted_versions
    left = set(version_files(s3_client, bucket))
    assert left == {v1, pointer.version}, "the served version and the rollback version stay, the orphan goes"
    assert pruned.deleted_versions == (v2,)
    assert fresh.refresh() == {"face": pointer.version}
    print(f"\nkilled after {v2}/{RELEASE_FILE} with the pointer at {v1}; the re-run published {pointer.version}; "
          f"prune deleted {pruned.deleted_versions}, left {sorted(left)}")


class PublisherDied(Exception):
    """Stands in for the SIGKILL between `release.json` and the pointer, in-process."""


def die_before_pointing(*args: object, **kwargs: object) -> None:
    raise PublisherDied


def test_prune_clears_a_version_released_but_never_pointed_to(
    s3_client: Minio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The state the crash above leaves (v2 released, the pointer never moved to it), then v3 is published: v2
    was never served, so it is no rollback target, and pruning should delete it (and keep v1, which was)."""
    bucket = f"idx-orphan-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(bucket)
    commit(s3_client, bucket, "r1", ["a0", "a1"], unit_vectors(2, seed=5))
    [first] = index_catalog(s3_client, bucket, kinds=("face",), work_dir=tmp_path / "w", cache_root=tmp_path / "c")
    commit(s3_client, bucket, "r2", ["b0", "b1"], unit_vectors(2, seed=6))
    with monkeypatch.context() as patch:
        patch.setattr(s3_versions, "point_to", die_before_pointing)
        with pytest.raises(PublisherDied):
            index_catalog(s3_client, bucket, kinds=("face",), work_dir=tmp_path / "w", cache_root=tmp_path / "c")
    [v2] = set(version_files(s3_client, bucket)) - {str(first.version)}
    assert RELEASE_FILE in version_files(s3_client, bucket)[v2]
    [third] = index_catalog(s3_client, bucket, kinds=("face",), work_dir=tmp_path / "w", cache_root=tmp_path / "c")
    assert str(third.version) > v2

    pruned = prune_versions(s3_client, bucket, "face", gone_submission_ids=())
    assert pruned.deleted_versions == (v2,)
    assert set(version_files(s3_client, bucket)) == {str(first.version), str(third.version)}
