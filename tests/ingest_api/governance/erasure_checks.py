"""Whole-bucket checks that erased photos left nothing behind: every object version is read, not just the latest."""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator

import faiss
import numpy as np
import pyarrow.parquet as pq
from minio import Minio

from beam_jobs.pipeline.catalog import RUNS_PREFIX
from beam_jobs.pipeline.erasure import ErasureScope, erased_rows
from indexers.metadata import detection_int_ids
from indexers.s3_versions import INDEX_ROOT
from indexers.storage_format import INDEX_FILE, TOMBSTONES_FILE
from infra.storage.objects import read_bytes


def object_versions(client: Minio, bucket: str, prefix: str) -> Iterator[tuple[str, str | None]]:
    for item in client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True):
        if not item.is_delete_marker:
            yield item.object_name or "", item.version_id


def catalog_versions_with_rows_of(client: Minio, bucket: str, scope: ErasureScope) -> list[str]:
    """Parquet object versions under the extraction runs holding a row `scope` erases."""
    found = []
    for key, version in object_versions(client, bucket, RUNS_PREFIX):
        if key.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(read_bytes(client, bucket, key, version)))
            table = key.rsplit("/", 1)[-1].rsplit("-", 1)[0]
            if erased_rows(table, rows, scope, scope.photo_ids).any():
                found.append(f"{key}@{version}")
    return found


def index_versions_with(client: Minio, bucket: str, detection_ids: Collection[str]) -> list[str]:
    """Index object versions (metadata, details, FAISS and tombstone files) holding one of `detection_ids`."""
    names, int_ids = sorted(detection_ids), detection_int_ids(sorted(detection_ids))
    found = []
    for key, version in object_versions(client, bucket, f"{INDEX_ROOT}/"):
        data = read_bytes(client, bucket, key, version)
        if key.endswith(".parquet"):
            held = set(pq.read_table(io.BytesIO(data)).column("detection_id").to_pylist()) & set(names)
        elif key.endswith(INDEX_FILE):
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
            # faiss' stubs type a deserialised index as the base `Index`; an IDMap's ids live in `id_map`
            held = set(np.intersect1d(faiss.vector_to_array(index.id_map), int_ids).tolist())  # type: ignore[attr-defined]
        elif key.endswith(TOMBSTONES_FILE):  # ids hidden but not yet compacted away
            held = set(np.intersect1d(np.load(io.BytesIO(data), allow_pickle=False), int_ids).tolist())
        else:
            continue
        if held:
            found.append(f"{key}@{version}")
    return found
