"""SIGKILL the real index builder (`witness index`, its own process) while it uploads a new version to S3.

v1 of the face index is published from a small committed run and served. A second, larger run is committed (a
real-size index: tens of thousands of 512-d face vectors, so the upload takes long enough to be watched) and
`witness index --kind face` is started for it. The moment is read from the bucket, not a timer: the first object
of the new version under `indexes/face/` appears while the pointer still names v1; the builder is SIGKILLed then.
The pointer must still name v1, a fresh search service must load v1 and answer, the half-written version must
never be served, and a second `witness index` must finish and publish a version that is then served (after
which `prune_versions` clears the half-written one).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from minio import Minio

from indexers.prune import prune_versions
from indexers.s3_versions import RELEASE_FILE, read_pointer
from infra.storage.config import S3Settings
from tests.reliability.index_builder import (
    nearest,
    serve_two_runs,
    service,
    start_builder,
    version_files,
)

pytestmark = pytest.mark.integration
V1_PHOTOS = 40
V2_PHOTOS = 30_000  # ~60 MB of float32 vectors: the upload of index.faiss is the window the kill aims at
BUILD_TIMEOUT_S = 120.0


def test_a_builder_killed_mid_upload_leaves_the_old_version_served(
    s3_client: Minio, s3_settings: S3Settings, tmp_path: Path
) -> None:
    bucket = f"idx-kill-{uuid.uuid4().hex[:12]}"
    v1, served, v1_vectors, v2_vectors = serve_two_runs(s3_client, bucket, tmp_path, first=V1_PHOTOS,
                                                        second=V2_PHOTOS, seed=1)
    log = tmp_path / "builder.log"
    builder = start_builder(s3_settings, bucket, tmp_path / "state", log)
    try:
        deadline = time.monotonic() + BUILD_TIMEOUT_S
        while not set(version_files(s3_client, bucket)) - {v1}:
            assert builder.poll() is None, f"the builder ended before any new object was seen:\n{log.read_text()}"
            assert time.monotonic() < deadline, "the builder wrote nothing in time"
            time.sleep(0.005)
        os.kill(builder.pid, signal.SIGKILL)
    finally:
        if builder.poll() is None:
            builder.kill()
        exit_code = builder.wait(timeout=30)
    assert exit_code == -signal.SIGKILL, "the builder was killed, not finished"
    at_kill = version_files(s3_client, bucket)
    [v2] = set(at_kill) - {v1}
    written = sorted(at_kill[v2])

    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.version == v1, "the pointer still names v1"
    fresh = service(s3_client, bucket, tmp_path / "fresh-cache")
    assert fresh.refresh() == {"face": v1} and served.refresh() == {"face": v1}
    assert nearest(fresh, v1_vectors[7]) == ("det-a7", v1, V1_PHOTOS)
    assert not (tmp_path / "fresh-cache" / "face" / v2).exists(), "nothing of the half-written version is cached"

    rerun = start_builder(s3_settings, bucket, tmp_path / "state", log)
    assert rerun.wait(timeout=BUILD_TIMEOUT_S) == 0, log.read_text()[-3000:]
    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.version not in {v1, v2}
    assert RELEASE_FILE in version_files(s3_client, bucket)[pointer.version]
    assert fresh.refresh() == {"face": pointer.version} and served.refresh() == {"face": pointer.version}
    assert nearest(fresh, v2_vectors[12345]) == ("det-b12345", pointer.version, V1_PHOTOS + V2_PHOTOS)
    assert nearest(served, v1_vectors[7]) == ("det-a7", pointer.version, V1_PHOTOS + V2_PHOTOS)
    pruned = prune_versions(s3_client, bucket, "face", gone_submission_ids=())
    assert pruned.deleted_versions == (v2,), "the half-written version is cleared once the pointer moved past it"
    assert set(version_files(s3_client, bucket)) == {v1, pointer.version}
    print(f"\nkilled with {written} of {v2} in the bucket (release.json: {RELEASE_FILE in written}); "
          f"v1 {v1} stayed served; the re-run published {pointer.version}")
