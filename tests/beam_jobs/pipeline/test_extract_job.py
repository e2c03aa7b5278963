"""The extraction job end to end against the real S3 server: DirectRunner and a real Dask cluster.

Checks the committed Parquet against MANIFEST.csv, the dead letters and their reasons, EXIF-free
thumbnails, identical records on both runners, and that a second run finds nothing new.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from minio import Minio
from PIL import Image

from beam_jobs.pipeline.catalog import load_state, read_committed, run_prefix
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from infra.storage.client import build_client
from infra.storage.evidence import store_json
from infra.storage.objects import read_bytes

from .conftest import Upload, put_evidence

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
EVIDENCE = "pl-evidence-job"
GOOD = ["exif/gaia_nikon_p6000_DSCN0010.jpg", "exif/commons_kodak_cx7530_south_lat.jpg",
        "exif/canon_sx60_rotated_nogps.jpg", "exif/broken_1445b.jpg", "exif/invalid_image01551.jpg"]
MakeSettings = Callable[[str, str], ExtractSettings]


@pytest.fixture(scope="module")
def uploads(make_settings: MakeSettings, shared_data: Path, random_bytes: bytes) -> dict[str, Upload]:
    settings = make_settings(EVIDENCE, "pl-catalog-seed")
    client, bucket = build_client(settings.s3), settings.s3.buckets.evidence
    found = {name: put_evidence(client, bucket, name=name, data=(shared_data / name).read_bytes()) for name in GOOD}
    pin = {"lat": 52.52, "lon": 13.405, "source": "pin"}
    found["pinned"] = put_evidence(client, bucket, name="pinned", device_position=pin,
                                   data=(shared_data / "exif/commons_canon_40d_nogps.jpg").read_bytes())
    found["random"] = put_evidence(client, bucket, name="random", data=random_bytes)
    found["missing"] = put_evidence(client, bucket, name="missing", data=b"never stored", store=False)
    store_json(client, bucket, "manifests/ev-test/bad/0.json", {"event_id": "ev-test"})
    return found


def _rows(table: pa.Table) -> list[dict[str, object]]:
    rows = [{k: v for k, v in row.items() if k != "run_id"} for row in table.to_pylist()]
    return sorted(rows, key=lambda row: str(row.get("photo_id") or row.get("object_key")))


def _check_direct_output(client: Minio, settings: ExtractSettings, uploads: dict[str, Upload],
                         manifest: dict[str, dict[str, str]]) -> None:
    photos = {row["sha256"]: row for row in read_committed(client, settings.s3.buckets.catalog).to_pylist()}
    assert len(photos) == 6
    gps = photos[uploads["exif/gaia_nikon_p6000_DSCN0010.jpg"].sha256]
    assert (gps["lat"], gps["lon"]) == pytest.approx((43.467448, 11.885127), abs=1e-5)
    assert (gps["position_source"], gps["time_source"]) == ("exif", "gps")
    south = photos[uploads["exif/commons_kodak_cx7530_south_lat.jpg"].sha256]
    assert (south["lat"], south["lon"]) == pytest.approx((-0.3713, 36.056417), abs=1e-5)
    assert photos[uploads["exif/canon_sx60_rotated_nogps.jpg"].sha256]["position_source"] == "none"
    pinned = photos[uploads["pinned"].sha256]
    assert (pinned["position_source"], pinned["lat"]) == ("pin", 52.52)
    for row in photos.values():
        assert row["sha256"] == manifest.get(next(n for n, u in uploads.items() if u.sha256 == row["sha256"]),
                                             {"sha256": row["sha256"]})["sha256"]
        thumb = Image.open(io.BytesIO(read_bytes(client, settings.s3.buckets.derived, str(row["thumbnail_key"]))))
        assert thumb.format == "JPEG" and not thumb.getexif() and max(thumb.size) <= 512
    dead = {row["object_key"]: row for row in read_committed(client, settings.s3.buckets.catalog,
                                                              "dead_letters").to_pylist()}
    assert {row["reason"] for row in dead.values()} == {"unsupported_format", "original_missing",
                                                          "manifest_invalid"}
    assert dead["manifests/ev-test/bad/0.json"]["reason"] == "manifest_invalid"


def _check_duckdb_reads_the_parts(client: Minio, settings: ExtractSettings, folder: Path) -> None:
    """The committed parts are plain Parquet: DuckDB (or Spark) reads them without our code."""
    catalog = settings.s3.buckets.catalog
    (run_id,) = load_state(client, catalog).runs
    for item in client.list_objects(catalog, prefix=run_prefix(run_id), recursive=True):
        name = str(item.object_name)
        if name.endswith(".parquet"):
            (folder / name.rsplit("/", 1)[-1]).write_bytes(read_bytes(client, catalog, name))
    ((rows, placed),) = _query(f"SELECT count(*), count(lat) FROM read_parquet('{folder}/photos-*.parquet')")
    ours = read_committed(client, catalog).to_pylist()
    assert (rows, placed) == (len(ours), sum(row["lat"] is not None for row in ours)) == (6, 3)
    reasons = _query(f"SELECT DISTINCT reason, manifest_key LIKE 'manifests/%' "
                     f"FROM read_parquet('{folder}/dead_letters-*.parquet')")
    assert set(reasons) == {("unsupported_format", True), ("original_missing", True), ("manifest_invalid", True)}


def _query(sql: str) -> list[tuple[object, ...]]:
    relation = duckdb.sql(sql)
    assert relation is not None, sql  # None only for statements that return nothing
    return relation.fetchall()


def test_direct_and_dask_give_identical_records(
    uploads: dict[str, Upload], make_settings: MakeSettings, dask_address: str,
    manifest: dict[str, dict[str, str]], tmp_path: Path,
) -> None:
    direct = make_settings(EVIDENCE, "pl-catalog-direct")
    client = build_client(direct.s3)
    summary = run_extract(direct, runner="DirectRunner")
    assert (summary.manifests, summary.rows("photos"), summary.rows("dead_letters")) == (9, 6, 3)
    assert summary.metrics["photos"] == 6 and summary.metrics["rejected.original_missing"] == 1
    _check_direct_output(client, direct, uploads, manifest)
    _check_duckdb_reads_the_parts(client, direct, tmp_path)

    again = run_extract(direct, runner="DirectRunner")
    assert (again.run_id, again.manifests) == (None, 0)  # idempotent: nothing new
    assert len(load_state(client, direct.s3.buckets.catalog).runs) == 1

    dask = make_settings(EVIDENCE, "pl-catalog-dask")
    on_dask = run_extract(dask, runner="DaskRunner",
                          beam_args=[f"--dask_client_address={dask_address}", "--dask_npartitions=3"])
    assert (on_dask.rows("photos"), on_dask.rows("dead_letters")) == (6, 3)
    for table in ("photos", "dead_letters"):
        assert _rows(read_committed(client, dask.s3.buckets.catalog, table)) == _rows(
            read_committed(client, direct.s3.buckets.catalog, table))


def test_uncommitted_run_is_ignored_and_redone(uploads: dict[str, Upload], make_settings: MakeSettings) -> None:
    settings = make_settings(EVIDENCE, "pl-catalog-crash")
    client, catalog = build_client(settings.s3), settings.s3.buckets.catalog
    # A run that crashed after writing a part but before its commit: readers must not see it.
    store_json(client, catalog, f"{run_prefix('19990101T000000Z-dead')}photos-00000.parquet", {"half": "written"})
    assert read_committed(client, catalog).num_rows == 0
    summary = run_extract(settings, runner="DirectRunner")
    assert summary.manifests == 9 and read_committed(client, catalog).num_rows == 6
