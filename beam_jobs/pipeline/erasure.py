"""Erase the rows of expired events and withdrawn submissions from the extraction catalog (issue #7).

    outcome = erase_from_catalog(client, catalog_bucket="catalog", derived_bucket="derived",
                                 scope=ErasureScope(event_ids=frozenset({"ev-1"}), submission_ids=frozenset({"s-9"})))

Committed Parquet parts are never rewritten in place, so a committed run holding rows to erase is replaced by a
redacted copy. For each such run, in this order (a crash after any step leaves the catalog readable and complete,
with either the old or the new run committed):

1. write the redacted run `<new run id>-redacted/`: each of the old run's parts without the erased rows, read
   back (`store_bytes`); then `verify_run` (schemas, sha256, photo + dead-letter rows == the old run's minus those
   erased) and its `_SUCCESS.json`, which names the run it `redacts` and keeps its `manifests` (still processed);
2. delete every version of the thumbnails and crops the erased rows name, while the old run still names them;
3. `replace_run`: one state.json write puts the new id in the old one's place;
4. once a fresh read of state.json shows the old run uncommitted, delete every object version under its prefix.

Each call starts with `sweep`, which finishes what a crash left: replaced runs still holding objects (a committed
run `redacts` them), redacted runs never swapped in (the `-redacted` suffix: no launcher wrote them), noncurrent
object versions under committed runs (readers read only the latest, hash-checked), and uncommitted extraction
runs older than `abandoned_after` (crashed launches; the next launch redoes their manifests).

A photo's rows: its `photos` row (by event_id / submission_id, or a photo id in `scope.photo_ids`), its
`detections` (by photo_id) and the dead letters of its manifest, whose key (`manifests/<event>/<submission>/...`)
is each dead letter's manifest_key (in parts written before that column: in its object_key or detail). A run's
detections belong to photos of the same run, so the runs to replace are found from their photos and dead letters
alone (the detections, with embeddings, are the bulk).

Extraction commits may land at any time: every state.json write is a compare-and-swap (see `catalog`), so a
commit racing a swap keeps both. One erasure at a time: `sweep` would delete another erasure's redacted run
before its swap.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from minio import Minio
from numpy.typing import NDArray

from beam_jobs.pipeline.catalog import (
    RUNS_PREFIX,
    RunVerificationError,
    input_rows,
    load_state,
    new_run_id,
    read_part,
    read_success,
    replace_run,
    run_prefix,
    verify_run,
    write_success,
)
from beam_jobs.pipeline.sinks import PARQUET_TYPE, parquet_bytes
from infra.storage.objects import delete_versions, store_bytes

REDACTED_SUFFIX = "-redacted"
#: An uncommitted extraction run older than this is taken as crashed (its id starts with its start time).
ABANDONED_AFTER = timedelta(days=2)
_MANIFEST_OWNER = re.compile(r"manifests/([^/\s()]+)/([^/\s()]+)/")
_RUN_TIME = "%Y%m%dT%H%M%SZ"


class CatalogErasureFailed(RuntimeError):
    """The object store refused deletions, or the old run is still committed after its swap; a re-run finishes."""


@dataclass(frozen=True)
class ErasureScope:
    """What must leave the catalog: photos of these events or submissions, or with these photo ids."""

    event_ids: frozenset[str] = frozenset()
    submission_ids: frozenset[str] = frozenset()
    photo_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.event_ids or self.submission_ids or self.photo_ids)

    def owns(self, event_id: str, submission_id: str) -> bool:
        return event_id in self.event_ids or submission_id in self.submission_ids


@dataclass
class CatalogErasure:
    replaced: dict[str, str] = field(default_factory=dict)  # old run id -> its redacted copy
    rows_removed: Counter[str] = field(default_factory=Counter)  # table -> rows
    derived_deleted: int = 0  # object versions of thumbnails and crops
    swept: list[str] = field(default_factory=list)  # leftover runs whose every object version was deleted
    object_versions_deleted: int = 0  # in the catalog bucket: replaced and swept runs, noncurrent versions
    in_flight: list[str] = field(default_factory=list)  # uncommitted runs left alone: maybe still running


@dataclass(frozen=True)
class _Version:
    key: str
    version_id: str | None
    latest: bool


def manifest_owner(text: str) -> tuple[str, str] | None:
    """(event_id, submission_id) of the first manifest key in `text`, or None."""
    found = _MANIFEST_OWNER.search(text)
    return (found.group(1), found.group(2)) if found else None


def _is_in(column: pa.ChunkedArray, values: Collection[str]) -> NDArray[np.bool_]:
    mask = pc.is_in(column, value_set=pa.array(sorted(values), pa.string()))
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def erased_photo_ids(photos: pa.Table, scope: ErasureScope) -> set[str]:
    """Photo ids in `photos` (PHOTO_SCHEMA rows) that `scope` erases."""
    gone = erased_rows("photos", photos, scope, scope.photo_ids)
    return set(photos.filter(pa.array(gone)).column("photo_id").to_pylist())


def erased_rows(table: str, rows: pa.Table, scope: ErasureScope, photo_ids: Collection[str]) -> NDArray[np.bool_]:
    """`(n,) bool`: the rows of catalog `table` that belong to an erased photo or manifest."""
    if table == "photos":
        return (_is_in(rows.column("event_id"), scope.event_ids) | _is_in(rows.column("submission_id"),
                                                                           scope.submission_ids)
                | _is_in(rows.column("photo_id"), photo_ids))
    if table == "detections":
        return _is_in(rows.column("photo_id"), photo_ids)
    if table == "dead_letters":
        # A part written before the column existed may lack it (read through `catalog.read_part` it is null).
        manifests = (rows.column("manifest_key").to_pylist() if "manifest_key" in rows.column_names
                     else [None] * rows.num_rows)
        owners = [manifest_owner(manifest) if manifest else manifest_owner(key) or manifest_owner(detail)
                  for manifest, key, detail in zip(manifests, rows.column("object_key").to_pylist(),
                                                   rows.column("detail").to_pylist(), strict=True)]
        return np.fromiter((owner is not None and scope.owns(*owner) for owner in owners), bool, len(owners))
    raise ValueError(f"unknown catalog table {table!r}")


def derived_keys(table: str, rows: pa.Table) -> set[str]:
    """Thumbnail and crop keys named by catalog rows (`rows` of `table`)."""
    column = {"photos": "thumbnail_key", "detections": "crop_key"}.get(table)
    return {key for key in rows.column(column).to_pylist() if key} if column else set()


def run_started(run_id: str) -> datetime | None:
    """When a run (`new_run_id` format) started, or None for an id in another format."""
    try:
        return datetime.strptime(run_id[:16], _RUN_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _versions_under(client: Minio, bucket: str, prefix: str) -> list[_Version]:
    """Every object version under `prefix`, delete markers included."""
    return [_Version(item.object_name or "", item.version_id, str(item.is_latest).lower() == "true")
            for item in client.list_objects(bucket, prefix=prefix, recursive=True, include_version=True)]


def _run_versions(client: Minio, bucket: str) -> dict[str, list[_Version]]:
    """Every object version under the runs prefix, by run id."""
    runs: dict[str, list[_Version]] = {}
    for version in _versions_under(client, bucket, RUNS_PREFIX):
        runs.setdefault(version.key[len(RUNS_PREFIX):].split("/", 1)[0], []).append(version)
    return runs


def _delete(client: Minio, bucket: str, versions: Iterable[_Version]) -> int:
    return delete_versions(client, bucket, ((v.key, v.version_id) for v in versions), failure=CatalogErasureFailed)


def _delete_keys(client: Minio, bucket: str, keys: Iterable[str]) -> int:
    """Delete every version of each key in `keys`; returns how many versions."""
    versions = [_Version(key, item.version_id, False) for key in sorted(keys)
                for item in client.list_objects(bucket, prefix=key, include_version=True) if item.object_name == key]
    return _delete(client, bucket, versions)


def sweep(client: Minio, bucket: str, outcome: CatalogErasure, *, now: datetime, abandoned_after: timedelta) -> None:
    """Delete what earlier erasures or crashed launches left under the runs prefix (see the module docstring)."""
    state = load_state(client, bucket)
    committed = set(state.runs)
    replaced = {read_success(client, bucket, run).get("redacts") for run in state.runs}
    for run, versions in sorted(_run_versions(client, bucket).items()):
        if run in committed:
            outcome.object_versions_deleted += _delete(client, bucket, [v for v in versions if not v.latest])
            continue
        started = run_started(run)
        if run in replaced or run.endswith(REDACTED_SUFFIX) or (started and now - started > abandoned_after):
            outcome.object_versions_deleted += _delete(client, bucket, versions)
            outcome.swept.append(run)
        else:
            outcome.in_flight.append(run)


def _redact_run(client: Minio, catalog_bucket: str, derived_bucket: str, run_id: str, scope: ErasureScope,
                photo_ids: Collection[str], outcome: CatalogErasure, now: datetime) -> None:
    """Steps 1-4 of the module docstring for one committed run."""
    success = read_success(client, catalog_bucket, run_id)
    new_id = f"{new_run_id(now)}{REDACTED_SUFFIX}"
    removed: Counter[str] = Counter()
    images: set[str] = set()
    written: dict[str, str] = {}
    inputs = 0
    for part in success["parts"]:  # one part at a time: a run's detections may not fit in memory at once
        table, rows = part["table"], read_part(client, catalog_bucket, part)
        gone = erased_rows(table, rows, scope, photo_ids)
        removed[table] += int(gone.sum())
        images |= derived_keys(table, rows.filter(pa.array(gone)))
        kept = rows.filter(pa.array(~gone))
        inputs += input_rows(table, kept)
        if kept.num_rows:
            key = run_prefix(new_id) + part["key"].rsplit("/", 1)[-1]
            written[key] = store_bytes(client, catalog_bucket, key, parquet_bytes(kept), PARQUET_TYPE).sha256
    parts = verify_run(client, catalog_bucket, new_id, expected_inputs=inputs)
    if {part.key: part.sha256 for part in parts} != written:
        raise RunVerificationError(f"redacted run {new_id}: parts read back differ from the parts written")
    write_success(client, catalog_bucket, new_id, parts=parts, manifests=success["manifests"],
                  extracted_by=success["extracted_by"],
                  extra={"redacts": run_id, "redacted_rows": dict(sorted(removed.items())),
                         # the families the run ran, so a redacted copy still settles retried failures
                         **({"families": success["families"]} if "families" in success else {})})
    outcome.derived_deleted += _delete_keys(client, derived_bucket, images)
    replace_run(client, catalog_bucket, run_id, new_id)
    # Conditional writes mean no commit can undo the swap; this fresh read guards the deletion that follows anyway.
    if run_id in load_state(client, catalog_bucket).runs:
        raise CatalogErasureFailed(f"state.json changed during the swap of {run_id}; run the erasure again")
    outcome.object_versions_deleted += _delete(client, catalog_bucket, _versions_under(client, catalog_bucket,
                                                                                        run_prefix(run_id)))
    outcome.replaced[run_id] = new_id
    outcome.rows_removed.update(removed)


def _holds_erased_rows(client: Minio, bucket: str, run_id: str, scope: ErasureScope) -> tuple[bool, set[str]]:
    """(whether the run's photos or dead letters hold erased rows, the erased photo ids among its photos)."""
    hit, photo_ids = False, set()
    for part in read_success(client, bucket, run_id)["parts"]:
        if part["table"] in ("photos", "dead_letters"):
            rows = read_part(client, bucket, part)
            hit |= bool(erased_rows(part["table"], rows, scope, scope.photo_ids).any())
            if part["table"] == "photos":
                photo_ids |= erased_photo_ids(rows, scope)
    return hit, photo_ids


def erase_from_catalog(client: Minio, *, catalog_bucket: str, derived_bucket: str, scope: ErasureScope,
                       now: datetime | None = None, abandoned_after: timedelta = ABANDONED_AFTER) -> CatalogErasure:
    """Replace every committed run holding rows in `scope` by a redacted copy, and sweep leftovers; idempotent."""
    moment = now or datetime.now(UTC)
    outcome = CatalogErasure()
    sweep(client, catalog_bucket, outcome, now=moment, abandoned_after=abandoned_after)
    if not scope:
        return outcome
    found = {run: _holds_erased_rows(client, catalog_bucket, run, scope) for run in load_state(client,
                                                                                              catalog_bucket).runs}
    photo_ids = scope.photo_ids.union(*(ids for _, ids in found.values()))
    for run_id, (hit, _) in found.items():
        if hit:
            _redact_run(client, catalog_bucket, derived_bucket, run_id, scope, photo_ids, outcome, moment)
    return outcome
