"""Pruning index versions that hold erased photos, on a real (versioned) S3 bucket, while a search service serves."""

from __future__ import annotations

import io
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from minio import Minio
from minio.commonconfig import ENABLED
from minio.versioningconfig import VersioningConfig

from indexers.catalog_index import KindIndex, build_kind_index
from indexers.fence import Circle, Fence, TimeWindow
from indexers.prune import STALE_STAGING_S, holds_gone_rows, never_served, prune_local, prune_versions
from indexers.s3_versions import (
    DETAILS_FILE,
    INDEX_ROOT,
    SERVED_HISTORY,
    Pointer,
    new_version_name,
    point_to,
    read_pointer,
    upload_version,
    version_prefix,
    write_local,
)
from indexers.storage_format import INDEX_FILE
from infra.storage.objects import read_bytes, store_bytes
from ingest_api.services.search import SearchContext, SearchService
from tests.indexers.real_catalog import INCIDENT, photo_rows, synthetic_detections
from tests.indexers.real_catalog import T0 as REAL_T0

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GONE = {"sub-a"}  # the submission of photo "a": its event expired


@pytest.fixture()
def bucket(s3_client: Minio) -> str:
    name = f"prune-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(name)
    s3_client.set_bucket_versioning(name, VersioningConfig(ENABLED))
    return name


def _built(names: list[str]) -> KindIndex:
    return build_kind_index("face", synthetic_detections(names, seed=len(names)), photo_rows(names, run_id="r1"),
                            run_ids=["r1"])


def _upload(client: Minio, bucket: str, tmp: Path, minute: int, names: list[str]) -> tuple[str, str]:
    """Upload a version named `minute` minutes after T0 (names sort by time); returns (version, release sha256)."""
    version = new_version_name(T0 + timedelta(minutes=minute))
    _, _, digest = upload_version(client, bucket, write_local(tmp, version, _built(names)))
    return version, digest


def _publish(client: Minio, bucket: str, tmp: Path, minute: int, names: list[str]) -> str:
    version, digest = _upload(client, bucket, tmp, minute, names)
    current = read_pointer(client, bucket, "face")
    point_to(client, bucket, "face", version, digest, expect_previous=current.version if current else None)
    return version


def _objects(client: Minio, bucket: str) -> list[tuple[str, str | None, bool]]:
    return [(item.object_name or "", item.version_id, str(item.is_latest).lower() == "true")
            for item in client.list_objects(bucket, prefix=f"{INDEX_ROOT}/face/", recursive=True,
                                            include_version=True)]


def test_holds_gone_rows() -> None:
    details = _built(["a", "b"]).details
    assert holds_gone_rows(details, {"sub-a"}, ())
    assert holds_gone_rows(details, (), {"photo-b"})
    assert not holds_gone_rows(details, {"sub-z"}, {"photo-z"}) and not holds_gone_rows(details, (), ())


def test_old_versions_holding_erased_photos_are_deleted_and_the_served_one_keeps_answering(
        s3_client: Minio, bucket: str, tmp_path: Path) -> None:
    build = tmp_path / "build"
    clean_old = _publish(s3_client, bucket, build, 0, ["b", "c"])  # no erased photo: kept for rollback
    with_a = _publish(s3_client, bucket, build, 1, ["a", "b", "c"])
    search = SearchService(client=s3_client, catalog_bucket=bucket, derived_bucket=bucket,
                           cache_dir=tmp_path / "cache", presign_expiry=timedelta(minutes=5), kinds=("face",))
    assert search.refresh() == {"face": with_a}
    orphan, _ = _upload(s3_client, bucket, build, 2, ["a", "b", "c", "d"])  # its publisher died before the pointer
    broken = new_version_name(T0 + timedelta(minutes=3))  # died half way through its upload: no details
    store_bytes(s3_client, bucket, version_prefix("face", broken) + INDEX_FILE, b"partial", "application/octet-stream")
    current = _publish(s3_client, bucket, build, 4, ["b", "c", "d"])  # the erasure's new version
    details_key = version_prefix("face", current) + DETAILS_FILE
    store_bytes(s3_client, bucket, details_key, read_bytes(s3_client, bucket, details_key),
                "application/octet-stream")  # a retried upload: a noncurrent copy
    in_flight, _ = _upload(s3_client, bucket, build, 5, ["a", "b"])  # newer than the pointer: maybe publishing now
    clean_new, _ = _upload(s3_client, bucket, build, 6, ["b"])  # as new, without erased rows: nothing to report

    outcome = prune_versions(s3_client, bucket, "face", gone_submission_ids=GONE)
    assert outcome.current == current and outcome.current_clean
    assert outcome.deleted_versions == (with_a, orphan, broken) and outcome.kept_newer == (in_flight,)
    left = _objects(s3_client, bucket)
    assert {key.split("/")[2] for key, _, _ in left} == {clean_old, current, in_flight, clean_new, "CURRENT.json"}
    assert all(latest for key, _, latest in left if not key.endswith("CURRENT.json"))
    for key, version_id, _ in left:
        if key.endswith(DETAILS_FILE) and in_flight not in key:
            details = pq.read_table(io.BytesIO(read_bytes(s3_client, bucket, key, version_id)))
            assert not holds_gone_rows(details, GONE, ()), key

    # the service still serves the deleted version from memory until it swaps, then drops its cached copy
    served = search._served("face")
    assert served.version == with_a
    row_a = int(np.flatnonzero(served.data.meta.detection_id == "det-a")[0])
    query = served.data.index.reconstruct(served.data.meta.ids[row_a:row_a + 1])
    fence = Fence(area=Circle(*INCIDENT, 1000), window=TimeWindow(REAL_T0, REAL_T0 + timedelta(hours=2)),
                  include_unplaced=True, include_untimed=True)
    found = search.similar("face", query, fence=fence, k=1, context=SearchContext(), query="a")
    assert found.index_version == with_a and [hit.detection_id for hit in found.hits] == ["det-a"]
    assert search.refresh() == {"face": current}
    assert sorted(p.name for p in (tmp_path / "cache" / "face").iterdir()) == [current]
    assert prune_versions(s3_client, bucket, "face", gone_submission_ids=GONE).deleted_versions == ()


def test_the_served_version_is_never_deleted_even_when_it_holds_erased_rows(s3_client: Minio, bucket: str,
                                                                            tmp_path: Path) -> None:
    served = _publish(s3_client, bucket, tmp_path / "build", 0, ["a", "b"])
    outcome = prune_versions(s3_client, bucket, "face", gone_submission_ids=GONE)
    assert outcome.current == served and not outcome.current_clean and outcome.deleted_versions == ()
    assert read_pointer(s3_client, bucket, "face") is not None and len(_objects(s3_client, bucket)) > 1
    assert prune_versions(s3_client, bucket, "plate", gone_submission_ids=GONE).current is None


def test_prune_local_keeps_the_served_copy_and_fresh_staging(tmp_path: Path) -> None:
    kind = tmp_path / "face"
    for name in ("v1", "v2", ".fetch-v3-fresh", ".fetch-v2-dead"):
        (kind / name).mkdir(parents=True)
        (kind / name / "index.faiss").write_bytes(b"x")
    now = (kind / ".fetch-v2-dead").stat().st_mtime + STALE_STAGING_S + 10
    os.utime(kind / ".fetch-v3-fresh", (now, now))
    assert sorted(prune_local(tmp_path, "face", keep={"v2"}, now=now)) == [".fetch-v2-dead", "v1"]
    assert sorted(p.name for p in kind.iterdir()) == [".fetch-v3-fresh", "v2"]


def test_never_served_reads_the_pointer_history() -> None:
    served = ("v02", "v03", "v05")
    pointer = Pointer("face", "v05", "0" * 64, "now", served)
    assert never_served("v04", pointer), "inside the history, never named: an orphan"
    assert not never_served("v03", pointer), "served once: a rollback target"
    assert not never_served("v01", pointer), "older than the remembered history: unknown, kept"
    assert not never_served("v04", Pointer("face", "v05", "0" * 64, "now")), "a pointer without history: unknown"


def test_the_pointer_remembers_what_it_named_and_pruning_drops_versions_it_skipped(
    s3_client: Minio, bucket: str, tmp_path: Path
) -> None:
    first = _publish(s3_client, bucket, tmp_path, 1, ["a", "b"])
    skipped, _ = _upload(s3_client, bucket, tmp_path, 2, ["a", "b", "c"])  # released, the pointer never moves to it
    second = _publish(s3_client, bucket, tmp_path, 3, ["a", "b", "c", "d"])
    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.served == (first, second)

    outcome = prune_versions(s3_client, bucket, "face", gone_submission_ids=())
    assert outcome.deleted_versions == (skipped,)
    left = {name.split("/")[2] for name, _, _ in _objects(s3_client, bucket) if name.count("/") > 2}
    assert left == {first, second}


def test_the_pointer_history_is_bounded(s3_client: Minio, bucket: str) -> None:
    for n in range(SERVED_HISTORY + 3):
        current = read_pointer(s3_client, bucket, "face")
        point_to(s3_client, bucket, "face", f"v{n:04d}", "0" * 64, expect_previous=current.version if current else None)
    pointer = read_pointer(s3_client, bucket, "face")
    assert pointer is not None and pointer.served is not None
    assert len(pointer.served) == SERVED_HISTORY and pointer.served[-1] == f"v{SERVED_HISTORY + 2:04d}"
    assert pointer.served[0] == "v0003"
