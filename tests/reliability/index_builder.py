"""The index builder as the kill tests drive it: committed runs of synthetic face vectors, `witness index` as a
child process, and a search service that reads what is published.

Shared by `test_index_builder_kill.py` (killed mid-upload, the moment read from the bucket) and
`test_index_builder_crash_point.py` (killed at a named crash point, `infra.faults`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from minio import Minio
from numpy.typing import NDArray

from beam_jobs.pipeline.catalog import commit_run, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from beam_jobs.records import DETECTION_SCHEMA
from indexers.fence import Circle, Fence, TimeWindow
from indexers.index_job import index_catalog
from indexers.s3_versions import INDEX_ROOT
from infra.storage.config import S3Settings
from infra.storage.objects import store_bytes
from ingest_api.services.search import SearchContext, SearchService
from tests.indexers.real_catalog import INCIDENT, T0, photo_rows

DIM = 512  # the face embedding's width
PART_ROWS = 10_000  # ~20 MB Parquet parts: one verified PUT each, above minio-py's 5 MiB multipart switch
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


def start_builder(s3: S3Settings, bucket: str, state_dir: Path, log_path: Path,
                  extra_environment: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`witness index --kind face` over `bucket`, its output appended to `log_path`."""
    witness = Path(sys.executable).with_name("witness")
    with log_path.open("ab") as log:
        return subprocess.Popen([str(witness), "index", "--kind", "face"], stdout=log, stderr=subprocess.STDOUT,
                                env=builder_environment(s3, bucket, state_dir) | dict(extra_environment or {}))


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


def serve_two_runs(client: Minio, bucket: str, work: Path, *, first: int, second: int, seed: int
                   ) -> tuple[str, SearchService, NDArray[np.float32], NDArray[np.float32]]:
    """Commit run r1 (`first` photos a0..), publish it and serve it; then commit r2 (`second` photos b0..), not
    yet indexed. Returns (v1, the service serving it, r1's vectors, r2's vectors)."""
    client.make_bucket(bucket)
    v1_vectors, v2_vectors = unit_vectors(first, seed=seed), unit_vectors(second, seed=seed + 1)
    commit(client, bucket, "r1", [f"a{i}" for i in range(first)], v1_vectors)
    [published] = index_catalog(client, bucket, kinds=("face",), work_dir=work / "work", cache_root=work / "c")
    v1 = str(published.version)
    served = service(client, bucket, work / "served-cache")
    assert served.refresh() == {"face": v1}
    commit(client, bucket, "r2", [f"b{i}" for i in range(second)], v2_vectors)
    return v1, served, v1_vectors, v2_vectors
