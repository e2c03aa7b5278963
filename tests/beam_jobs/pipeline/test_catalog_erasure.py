"""Erasing rows from committed catalog runs on the real S3 server: the redacted copy, the swap, the deletion of
every object version of the old run, crashes at each step and the re-run that finishes the job.

Synthetic runs: three events' photos with detections, thumbnails, crops and a dead letter, in three runs.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from minio import Minio
from minio.commonconfig import ENABLED
from minio.versioningconfig import VersioningConfig

from beam_jobs.pipeline import erasure
from beam_jobs.pipeline.catalog import (
    RUNS_PREFIX,
    SCHEMAS,
    RunVerificationError,
    commit_run,
    conformed,
    load_state,
    read_committed,
    read_success,
    run_prefix,
    verify_run,
)
from beam_jobs.pipeline.erasure import ErasureScope, erase_from_catalog, erased_rows, manifest_owner, run_started
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from infra.storage.objects import read_bytes, store_bytes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
GONE_EVENT, KEPT_EVENT = "ev-gone", "ev-kept"
# photo id -> (event, submission); s-withdrawn's witness withdrew, ev-gone expired
PHOTOS = {"p-gone-1": (GONE_EVENT, "s-gone"), "p-gone-2": (GONE_EVENT, "s-gone"), "p-kept-1": (KEPT_EVENT, "s-kept"),
          "p-kept-2": (KEPT_EVENT, "s-kept"), "p-withdrawn": (KEPT_EVENT, "s-withdrawn")}
RUNS = {"20260101T000000Z-aaaaaaaa": ("p-gone-1", "p-kept-1"), "20260102T000000Z-bbbbbbbb": ("p-kept-2",),
        "20260103T000000Z-cccccccc": ("p-gone-2", "p-withdrawn")}
# Written before dead letters had a `manifest_key` column: the key only at the end of the detail.
LEGACY_RUN = "20260101T000000Z-aaaaaaaa"
LEGACY_DEAD_LETTER_SCHEMA = SCHEMAS["dead_letters"].remove(SCHEMAS["dead_letters"].get_field_index("manifest_key"))
SCOPE = ErasureScope(event_ids=frozenset({GONE_EVENT}), submission_ids=frozenset({"s-withdrawn"}))
ERASED = {"p-gone-1", "p-gone-2", "p-withdrawn"}


class Crash(RuntimeError):
    """Stands for the process dying at that point."""


@dataclass(frozen=True)
class Catalog:
    client: Minio
    bucket: str
    derived: str


def _manifest(photo: str) -> str:
    event, submission = PHOTOS[photo]
    return f"manifests/{event}/{submission}/{photo}.json"


def _photo_row(photo: str, run_id: str) -> dict[str, Any]:
    event, submission = PHOTOS[photo]
    return {"photo_id": photo, "sha256": "0" * 64, "event_id": event, "submission_id": submission,
            "object_key": f"originals/{photo}", "format": "JPEG", "width": 10, "height": 10, "lat": None, "lon": None,
            "alt": None, "position_source": "none", "place_name": None, "taken_at_utc": None, "taken_local": None,
            "time_source": "unknown", "clock_skew_s": None, "time_flags": [], "make": None, "model": None,
            "lens": None, "software": None, "phash": "0" * 16, "exif_problems": [],
            "thumbnail_key": f"thumbnails/{photo}.jpg", "extracted_by": "test", "run_id": run_id}


def _detection_row(photo: str, n: int) -> dict[str, Any]:
    return {"detection_id": f"{photo}-d{n}", "photo_id": photo, "kind": "face", "box": [0.0, 0.0, 1.0, 1.0],
            "score": 0.9, "quality": 0.8, "attributes": "{}", "embedding": [0.5, 0.5], "model_name": "m",
            "model_version": "1", "crop_key": f"crops/{photo}-d{n}.jpg"}


def _dead_letters(run_id: str, photos: tuple[str, ...]) -> pa.Table:
    if run_id == LEGACY_RUN:
        return pa.Table.from_pylist([{"object_key": f"originals/{p}", "sha256": None, "reason": "decode_failed",
                                      "detail": f"truncated (manifest {_manifest(p)})", "run_id": run_id}
                                     for p in photos], LEGACY_DEAD_LETTER_SCHEMA)
    return pa.Table.from_pylist([{"object_key": f"originals/{p}", "sha256": None, "reason": "decode_failed",
                                  "detail": "truncated", "run_id": run_id, "manifest_key": _manifest(p)}
                                 for p in photos], SCHEMAS["dead_letters"])


def _write_run(catalog: Catalog, run_id: str, photos: tuple[str, ...], *, commit: bool = True) -> None:
    """One run as the launcher writes it: one part per table (photos, detections, a dead letter of each photo's
    manifest, as the job writes one when a later copy of a photo is refused), verified, then committed.
    `LEGACY_RUN`'s dead letters are in the schema of the time before `manifest_key`; it is committed as it was
    then, its parts listed without today's schema check."""
    tables = {
        "photos": pa.Table.from_pylist([_photo_row(p, run_id) for p in photos], SCHEMAS["photos"]),
        "detections": pa.Table.from_pylist([_detection_row(p, n) for p in photos for n in range(2)],
                                           SCHEMAS["detections"]),
        "dead_letters": _dead_letters(run_id, photos),
    }
    legacy_parts = []
    for name, rows in tables.items():
        key = part_key(run_prefix(run_id), name, 0)
        data = parquet_bytes(rows)
        store_bytes(catalog.client, catalog.bucket, key, data, PARQUET_TYPE)
        legacy_parts.append(PartInfo(name, key, rows.num_rows, hashlib.sha256(data).hexdigest()))
    for photo in photos:
        for key in [f"thumbnails/{photo}.jpg", f"crops/{photo}-d0.jpg", f"crops/{photo}-d1.jpg"]:
            store_bytes(catalog.client, catalog.derived, key, b"\xff\xd8 jpeg of " + key.encode(), "image/jpeg")
    if commit:
        parts = (sorted(legacy_parts, key=lambda part: part.key) if run_id == LEGACY_RUN
                 else verify_run(catalog.client, catalog.bucket, run_id, expected_inputs=2 * len(photos)))
        commit_run(catalog.client, catalog.bucket, run_id, parts=parts, manifests=[_manifest(p) for p in photos],
                   extracted_by="test", extra={"families": ["faces", "objects"]})


@pytest.fixture
def catalog(s3_client: Minio) -> Iterator[Catalog]:
    tag = uuid.uuid4().hex[:8]
    made = Catalog(s3_client, f"ce-cat-{tag}", f"ce-der-{tag}")
    for bucket in (made.bucket, made.derived):
        s3_client.make_bucket(bucket)
        s3_client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
    for run_id, photos in RUNS.items():
        _write_run(made, run_id, photos)
    yield made


def _all_versions(client: Minio, bucket: str, prefix: str) -> list[tuple[str, str | None]]:
    return [(item.object_name or "", item.version_id)
            for item in client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True)
            if not item.is_delete_marker]


def _erased_rows_anywhere(catalog: Catalog) -> list[str]:
    """Every Parquet object version in the catalog bucket, read and checked for a row of an erased photo."""
    found = []
    for key, version in _all_versions(catalog.client, catalog.bucket, RUNS_PREFIX):
        if key.endswith(".parquet"):
            table = key.rsplit("/", 1)[-1].rsplit("-", 1)[0]
            rows = pq.read_table(io.BytesIO(read_bytes(catalog.client, catalog.bucket, key, version)))
            if erased_rows(table, rows, SCOPE, ERASED).any():
                found.append(f"{key}@{version}")
    return found


def _committed_photo_ids(catalog: Catalog) -> set[str]:
    return set(read_committed(catalog.client, catalog.bucket).column("photo_id").to_pylist())


def _assert_fully_erased(catalog: Catalog, state_before: tuple[str, ...], processed: frozenset[str]) -> None:
    client, bucket = catalog.client, catalog.bucket
    assert _committed_photo_ids(catalog) == {"p-kept-1", "p-kept-2"}
    detections = set(read_committed(client, bucket, "detections").column("photo_id").to_pylist())
    assert detections == {"p-kept-1", "p-kept-2"}
    letters = read_committed(client, bucket, "dead_letters").to_pylist()
    # p-kept-1's from the legacy run (its redacted copy, in today's schema: manifest_key null), p-kept-2's new
    assert sorted((row["manifest_key"] is None, manifest_owner(row["manifest_key"] or row["detail"]))
                  for row in letters) == [(False, (KEPT_EVENT, "s-kept")), (True, (KEPT_EVENT, "s-kept"))]
    state = load_state(client, bucket)
    assert state.processed == processed  # erased manifests stay processed: never extracted again
    assert state.runs[1] == state_before[1]  # the untouched run
    for position in (0, 2):  # the replaced runs, in their places
        assert state.runs[position].endswith(erasure.REDACTED_SUFFIX)
        redacted = read_success(client, bucket, state.runs[position])
        assert redacted["redacts"] == state_before[position]
        assert redacted["families"] == ["faces", "objects"]  # so it still settles retried model failures
        assert _all_versions(client, bucket, run_prefix(state_before[position])) == []
    assert {key.split("/")[2] for key, _ in _all_versions(client, bucket, RUNS_PREFIX)} == set(state.runs)
    assert _erased_rows_anywhere(catalog) == []
    for photo in PHOTOS:
        keys = [f"thumbnails/{photo}.jpg", f"crops/{photo}-d0.jpg", f"crops/{photo}-d1.jpg"]
        left = sum(len(_all_versions(client, catalog.derived, key)) for key in keys)
        assert left == (0 if photo in ERASED else 3), photo


def test_committed_parts_from_before_a_new_column_read_it_as_nulls() -> None:
    old = _dead_letters(LEGACY_RUN, ("p-kept-1",))
    now = conformed("dead_letters", old)
    assert now.schema.equals(SCHEMAS["dead_letters"])
    assert now.column("manifest_key").to_pylist() == [None]
    assert now.drop_columns(["manifest_key"]).to_pylist() == old.to_pylist()
    assert conformed("dead_letters", now) is now
    with pytest.raises(RunVerificationError, match="reason"):
        conformed("dead_letters", old.drop_columns(["reason"]))


def test_manifest_owner_and_run_start() -> None:
    assert manifest_owner("decode_failed (manifest manifests/ev-1/sub-2/ab.json)") == ("ev-1", "sub-2")
    assert manifest_owner("manifests/ev-1/sub-2/ab.json") == ("ev-1", "sub-2")
    assert manifest_owner("originals/ab/cd/abcd") is None
    assert run_started("20260101T120000Z-3f9a0c1d") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert run_started("20260101T120000Z-3f9a0c1d-redacted") == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert run_started("manual-run") is None
    assert not ErasureScope() and ErasureScope(photo_ids=frozenset({"p"}))


def test_erasure_replaces_the_runs_holding_erased_rows(catalog: Catalog) -> None:
    before = load_state(catalog.client, catalog.bucket)
    assert _committed_photo_ids(catalog) == set(PHOTOS) and len(_erased_rows_anywhere(catalog)) == 6
    outcome = erase_from_catalog(catalog.client, catalog_bucket=catalog.bucket, derived_bucket=catalog.derived,
                                 scope=SCOPE, now=NOW)
    assert set(outcome.replaced) == {before.runs[0], before.runs[2]}
    assert outcome.rows_removed == {"photos": 3, "detections": 6, "dead_letters": 3}
    assert outcome.derived_deleted == 9 and outcome.swept == [] and outcome.in_flight == []
    _assert_fully_erased(catalog, before.runs, before.processed)

    again = erase_from_catalog(catalog.client, catalog_bucket=catalog.bucket, derived_bucket=catalog.derived,
                               scope=SCOPE, now=NOW)
    assert again.replaced == {} and again.object_versions_deleted == 0 and not again.rows_removed


def _crash_at(monkeypatch: pytest.MonkeyPatch, name: str, *, after_calls: int = 0, once_done: bool = False) -> None:
    """Die on call number `after_calls + 1` of `erasure.<name>`: before it runs, or right after (`once_done`)."""
    real: Callable[..., Any] = getattr(erasure, name)
    calls = []

    def crash(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > after_calls:
            if once_done:
                real(*args, **kwargs)
            raise Crash(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(erasure, name, crash)


@pytest.mark.parametrize(("step", "after_calls", "once_done", "old_committed"), [
    ("store_bytes", 1, False, True),  # a part of the redacted run written, the next one not
    ("write_success", 0, False, True),  # every part written and verified, no _SUCCESS.json
    ("_delete_keys", 0, True, True),  # thumbnails and crops deleted, the redacted run not swapped in
    ("replace_run", 0, False, True),  # the redacted run complete, not yet swapped in
    ("replace_run", 0, True, False),  # swapped in, the old run not yet deleted
])
def test_a_crash_leaves_the_catalog_complete_and_a_rerun_finishes(
        catalog: Catalog, monkeypatch: pytest.MonkeyPatch, step: str, after_calls: int, once_done: bool,
        old_committed: bool) -> None:
    before = load_state(catalog.client, catalog.bucket)
    with monkeypatch.context() as patched:
        _crash_at(patched, step, after_calls=after_calls, once_done=once_done)
        with pytest.raises(Crash):
            erase_from_catalog(catalog.client, catalog_bucket=catalog.bucket, derived_bucket=catalog.derived,
                               scope=SCOPE, now=NOW)
    state = load_state(catalog.client, catalog.bucket)
    assert (before.runs[0] in state.runs) is old_committed  # one or the other run of the first swap
    assert state.runs[1:] == before.runs[1:] and state.processed == before.processed
    expected = set(PHOTOS) if old_committed else set(PHOTOS) - {"p-gone-1"}
    assert _committed_photo_ids(catalog) == expected  # readable, every part hash-checked, nothing kept missing

    outcome = erase_from_catalog(catalog.client, catalog_bucket=catalog.bucket, derived_bucket=catalog.derived,
                                 scope=SCOPE, now=NOW + timedelta(minutes=1))
    if old_committed:
        assert set(outcome.replaced) == {before.runs[0], before.runs[2]}
        assert len(outcome.swept) == 1 and outcome.swept[0].endswith(erasure.REDACTED_SUFFIX)  # the orphan copy
    else:
        assert set(outcome.replaced) == {before.runs[2]} and outcome.swept == [before.runs[0]]
    _assert_fully_erased(catalog, before.runs, before.processed)


def test_sweep_keeps_fresh_uncommitted_runs_and_removes_stale_ones_and_old_versions(catalog: Catalog) -> None:
    client, bucket = catalog.client, catalog.bucket
    crashed, running = "20260201T000000Z-dddddddd", "20260301T115900Z-eeeeeeee"
    _write_run(catalog, crashed, ("p-gone-1",), commit=False)
    _write_run(catalog, running, ("p-kept-1",), commit=False)
    kept_run = next(iter(RUNS))
    part = part_key(run_prefix(kept_run), "photos", 0)
    rewrite = read_bytes(client, bucket, part)  # a retried write: same bytes, a second (noncurrent) version
    store_bytes(client, bucket, part, rewrite, PARQUET_TYPE)
    assert len(_all_versions(client, bucket, part)) == 2

    outcome = erase_from_catalog(client, catalog_bucket=bucket, derived_bucket=catalog.derived, scope=ErasureScope(),
                                 now=NOW)
    assert outcome.swept == [crashed] and outcome.in_flight == [running] and outcome.replaced == {}
    assert len(_all_versions(client, bucket, part)) == 1 and _all_versions(client, bucket, run_prefix(crashed)) == []
    assert _committed_photo_ids(catalog) == set(PHOTOS)
    assert len(_all_versions(client, bucket, run_prefix(running))) == 3
