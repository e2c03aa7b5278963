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
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from minio import Minio
from numpy.typing import NDArray

from beam_jobs.pipeline.catalog import commit_run, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from beam_jobs.records import DETECTION_SCHEMA
from indexers.fence import Circle, Fence, TimeWindow
from indexers.index_job import index_catalog
from indexers.prune import prune_versions
from indexers.s3_versions import INDEX_ROOT, RELEASE_FILE, read_pointer
from infra.storage.config import S3Settings
from infra.storage.objects import store_bytes
from ingest_api.services.search import SearchContext, SearchService
from tests.indexers.real_catalog import INCIDENT, T0, photo_rows

pytestmark = pytest.mark.integration
DIM = 512  # the face embedding's width
V1_PHOTOS = 40
V2_PHOTOS = 30_000  # ~60 MB of float32 vectors: the upload of index.faiss is the window the kill aims at
PART_ROWS = 10_000  # ~20 MB Parquet parts: one verified PUT each, above minio-py's 5 MiB multipart switch
BUILD_TIMEOUT_S = 120.0
CONTEXT = SearchContext(case_id="CASE-KILL", legal_basis="test", requested_by="reliability")
EVERYWHERE = Fence(area=Circle(INCIDENT[0], INCIDENT[1], 100_000.0),
                   window=TimeWindow(T0 - timedelta(days=1), T0 + timedelta(days=365)),
                   include_unplaced=True, include_untimed=True)


def unit_vectors(n: int, seed: int) -> NDArray[np.float32]:
    """`(n, DIM) float32`, seeded, L2-normalised."""
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def detections(names: list[str], vectors: NDArray[np.float32]) -> pa.Table:
    """One face detection `det-<name>` of photo `photo-<name>` per row of `vectors`, built column-wise (fast)."""
    n = len(names)
    offsets = pa.array(np.arange(0, (n + 1) * DIM, DIM, dtype=np.int32))
    boxes = pa.ListArray.from_arrays(pa.array(np.arange(0, (n + 1) * 4, 4, dtype=np.int32)),
                                     pa.array(np.tile(np.array([1, 2, 3, 4], np.float32), n)))
    columns = {
        "detection_id": pa.array([f"det-{name}" for name in names]),
        "photo_id": pa.array([f"photo-{name}" for name in names]),
        "kind": pa.array(["face"] * n), "box": boxes,
        "score": pa.array(np.full(n, 0.9, np.float32)), "quality": pa.array(np.full(n, 0.8, np.float32)),
        "attributes": pa.array(["{}"] * n),
        "embedding": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1))),
        "model_name": pa.array(["m"] * n), "model_version": pa.array(["v"] * n),
        "crop_key": pa.array([f"crops/det-{name}.jpg" for name in names]),
    }
    return pa.Table.from_pydict(columns, schema=DETECTION_SCHEMA)


def commit(client: Minio, bucket: str, run_id: str, names: list[str], vectors: NDArray[np.float32]) -> None:
    """Write and commit a run exactly as the extraction job lays it out."""
    parts = []
    for table, data in {"photos": photo_rows(names, run_id=run_id), "detections": detections(names, vectors)}.items():
        for number, start in enumerate(range(0, data.num_rows, PART_ROWS)):
            part = data.slice(start, PART_ROWS)
            key = part_key(run_prefix(run_id), table, number)
            sha = store_bytes(client, bucket, key, parquet_bytes(part), PARQUET_TYPE).sha256
            parts.append(PartInfo(table, key, part.num_rows, sha))
    commit_run(client, bucket, run_id, parts=parts, manifests=[f"manifest-{run_id}"], extracted_by="test")


def builder_environment(s3: S3Settings, bucket: str, state_dir: Path) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("WITNESS_")}
    return inherited | {"WITNESS_STATE_DIR": str(state_dir), "WITNESS_S3__ENDPOINT": s3.endpoint,
                        "WITNESS_S3__BUCKETS__CATALOG": bucket}


def start_builder(s3: S3Settings, bucket: str, state_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    witness = Path(sys.executable).with_name("witness")
    with log_path.open("ab") as log:
        return subprocess.Popen([str(witness), "index", "--kind", "face"], stdout=log, stderr=subprocess.STDOUT,
                                env=builder_environment(s3, bucket, state_dir))


def version_files(client: Minio, bucket: str) -> dict[str, set[str]]:
    """{version: file names} under `indexes/face/` (the pointer itself left out)."""
    found: dict[str, set[str]] = {}
    for item in client.list_objects(bucket, prefix=f"{INDEX_ROOT}/face/", recursive=True):
        parts = str(item.object_name).split("/")
        if len(parts) == 4:
            found.setdefault(parts[2], set()).add(parts[3])
    return found


def service(client: Minio, bucket: str, cache: Path) -> SearchService:
    return SearchService(client=client, catalog_bucket=bucket, derived_bucket=bucket, cache_dir=cache,
                         presign_expiry=timedelta(minutes=5), kinds=("face",))


def nearest(search: SearchService, vector: NDArray[np.float32]) -> tuple[str, str, int]:
    """(best detection id, index version searched, detections in the fence: here every one served)."""
    outcome = search.similar("face", vector[None, :], fence=EVERYWHERE, k=1, context=CONTEXT, query="kill test")
    return outcome.hits[0].detection_id, outcome.index_version, outcome.candidates


def test_a_builder_killed_mid_upload_leaves_the_old_version_served(
    s3_client: Minio, s3_settings: S3Settings, tmp_path: Path
) -> None:
    bucket = f"idx-kill-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(bucket)
    v1_names, v2_names = [f"a{i}" for i in range(V1_PHOTOS)], [f"b{i}" for i in range(V2_PHOTOS)]
    v1_vectors, v2_vectors = unit_vectors(V1_PHOTOS, seed=1), unit_vectors(V2_PHOTOS, seed=2)
    commit(s3_client, bucket, "r1", v1_names, v1_vectors)
    [first] = index_catalog(s3_client, bucket, kinds=("face",), work_dir=tmp_path / "work", cache_root=tmp_path / "c")
    v1 = str(first.version)
    served = service(s3_client, bucket, tmp_path / "served-cache")
    assert served.refresh() == {"face": v1}

    commit(s3_client, bucket, "r2", v2_names, v2_vectors)
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
