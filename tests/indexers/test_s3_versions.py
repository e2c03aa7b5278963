"""Index versions in a real S3 server: atomic publishing, verified fetches, incremental indexing of committed runs."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from minio import Minio

from beam_jobs.pipeline.catalog import commit_run, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from indexers.catalog_index import KindIndex, build_kind_index
from indexers.index_job import IndexOutcome, index_catalog
from indexers.s3_versions import (
    PointerMovedError,
    load_published,
    new_version_name,
    point_to,
    publish_version,
    read_pointer,
    upload_version,
    version_prefix,
    write_local,
)
from indexers.storage_format import INDEX_FILE, METADATA_FILE, CorruptVersionError
from infra.storage.objects import store_bytes
from ingest_api.services.search import SearchService
from tests.indexers.real_catalog import photo_rows, synthetic_detections

pytestmark = pytest.mark.integration


@pytest.fixture()
def bucket(s3_client: Minio) -> str:
    name = f"idx-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(name)
    return name


def built(names: list[str], seed: int = 0) -> KindIndex:
    return build_kind_index("face", synthetic_detections(names, seed), photo_rows(names, run_id="r1"), run_ids=["r1"])


def publish(client: Minio, bucket: str, tmp: Path, data: KindIndex, previous: str | None) -> str:
    version = new_version_name()
    publish_version(client, bucket, write_local(tmp, version, data), expect_previous=previous)
    return version


def service(client: Minio, bucket: str, cache: Path) -> SearchService:
    return SearchService(client=client, catalog_bucket=bucket, derived_bucket=bucket, cache_dir=cache,
                         presign_expiry=timedelta(minutes=5), kinds=("face",))


def test_published_version_round_trips_through_the_cache(s3_client: Minio, bucket: str, tmp_path: Path) -> None:
    assert load_published(s3_client, bucket, "face", tmp_path / "cache") is None
    original = built([f"n{i}" for i in range(20)])
    version = publish(s3_client, bucket, tmp_path / "build", original, None)
    pointer, loaded = load_published(s3_client, bucket, "face", tmp_path / "cache") or pytest.fail("not published")
    assert pointer.version == version and loaded.run_ids == ("r1",)
    assert np.array_equal(loaded.meta.ids, original.meta.ids) and loaded.details.equals(original.details)
    assert (tmp_path / "cache" / "face" / version / "release.json").is_file()
    # a cached copy damaged on local disk is dropped and fetched again
    (tmp_path / "cache" / "face" / version / "details.parquet").write_bytes(b"rot")
    assert load_published(s3_client, bucket, "face", tmp_path / "cache") is not None


def test_a_crash_before_the_pointer_write_leaves_the_old_version_served(s3_client: Minio, bucket: str,
                                                                       tmp_path: Path) -> None:
    v1 = publish(s3_client, bucket, tmp_path / "build", built(["a", "b", "c"]), None)
    search = service(s3_client, bucket, tmp_path / "cache")
    assert search.refresh() == {"face": v1}
    # publisher dies after uploading every file of v2 but before the pointer: v1 stays
    v2 = new_version_name()
    upload_version(s3_client, bucket, write_local(tmp_path / "build", v2, built(["a", "b", "c", "d"], seed=1)))
    assert search.refresh() == {"face": v1}
    # publisher dies half way through uploading v3, and a faulty one still points at it: refused, v1 stays
    v3 = new_version_name()
    path = write_local(tmp_path / "build", v3, built(["e", "f"], seed=2))
    s3_client.fput_object(bucket, version_prefix("face", v3) + INDEX_FILE, str(path / INDEX_FILE))
    point_to(s3_client, bucket, "face", v3, "0" * 64, expect_previous=v1)
    assert search.refresh() == {"face": v1}
    with pytest.raises(CorruptVersionError):
        load_published(s3_client, bucket, "face", tmp_path / "other-cache")
    assert not list((tmp_path / "other-cache" / "face").glob("*")), "no partial download is left as a version"


def test_an_altered_object_is_refused(s3_client: Minio, bucket: str, tmp_path: Path) -> None:
    publish(s3_client, bucket, tmp_path / "build", built(["a", "b", "c"]), None)
    version = (read_pointer(s3_client, bucket, "face") or pytest.fail("no pointer")).version
    body = b"PAR1 not the metadata PAR1"
    s3_client.put_object(bucket, version_prefix("face", version) + METADATA_FILE, io.BytesIO(body), len(body))
    with pytest.raises(CorruptVersionError, match=METADATA_FILE):
        load_published(s3_client, bucket, "face", tmp_path / "cache")


def test_a_pointer_moved_by_another_publisher_is_not_overwritten(s3_client: Minio, bucket: str,
                                                                 tmp_path: Path) -> None:
    v1 = publish(s3_client, bucket, tmp_path / "build", built(["a", "b"]), None)
    with pytest.raises(PointerMovedError):
        publish(s3_client, bucket, tmp_path / "build", built(["a", "b", "c"]), None)
    assert (read_pointer(s3_client, bucket, "face") or pytest.fail("no pointer")).version == v1


def commit(client: Minio, bucket: str, run_id: str, names: list[str], seed: int) -> None:
    """Write and commit a run exactly as the extraction job lays it out."""
    parts = []
    tables = {"photos": photo_rows(names, run_id=run_id), "detections": synthetic_detections(names, seed)}
    for table, data in tables.items():
        key = part_key(run_prefix(run_id), table, 0)
        sha = store_bytes(client, bucket, key, parquet_bytes(data), PARQUET_TYPE).sha256
        parts.append(PartInfo(table, key, data.num_rows, sha))
    commit_run(client, bucket, run_id, parts=parts, manifests=[f"manifest-{run_id}"], extracted_by="test")


def test_index_catalog_adds_new_runs_and_removes_withdrawn_photos(s3_client: Minio, bucket: str,
                                                                  tmp_path: Path) -> None:
    def run(withdrawn: frozenset[str] = frozenset()) -> dict[str, IndexOutcome]:
        outcomes = index_catalog(s3_client, bucket, kinds=("face", "vehicle"), work_dir=tmp_path / "work",
                                 cache_root=tmp_path / "cache", withdrawn_submission_ids=withdrawn)
        return {outcome.kind: outcome for outcome in outcomes}

    commit(s3_client, bucket, "r1", [f"a{i}" for i in range(30)], seed=1)
    first = run()
    assert (first["face"].action, first["face"].count, first["vehicle"].action) == ("built", 30, "empty")
    commit(s3_client, bucket, "r2", [f"b{i}" for i in range(5)], seed=2)
    second = run()["face"]
    assert (second.action, second.added_runs, second.count) == ("updated", ("r2",), 35)
    third = run(frozenset({"sub-a7", "sub-b2"}))["face"]
    assert (third.action, third.removed_photos, third.count) == ("updated", 2, 33)
    fourth = run(frozenset({"sub-a7", "sub-b2"}))["face"]
    assert (fourth.action, fourth.version) == ("unchanged", third.version)
    _, served = load_published(s3_client, bucket, "face", tmp_path / "cache") or pytest.fail("not published")
    assert served.run_ids == ("r1", "r2") and "photo-a7" not in served.meta.photo_id.tolist()
    release = json.loads((tmp_path / "cache" / "face" / str(third.version) / "release.json").read_text())
    assert release["run_ids"] == ["r1", "r2"]


def test_version_names_sort_by_publication_time_within_one_second() -> None:
    moment = datetime(2026, 11, 23, 16, 19, 32, tzinfo=UTC)
    names = [new_version_name(moment + timedelta(microseconds=step)) for step in range(0, 50, 7)]
    assert names == sorted(names) and len(set(names)) == len(names)
