"""Committed-run state of the extraction job in the catalog bucket, and the reader the indexers use.

    extract/state.json                       {"runs": [...committed run ids, oldest first], "processed": [...]}
    extract/runs/<run_id>/photos-00000.parquet, dead_letters-*.parquet, detections-*.parquet
    extract/runs/<run_id>/_SUCCESS.json      parts (key, rows, sha256), the manifests the run processed and the
                                             model families it ran (`beam_jobs.pipeline.retry` reads them)

A run is committed by writing `_SUCCESS.json`, then state.json. Readers follow state.json only, so a run
that crashed before its commit is ignored and the next run redoes its manifests. Erasure
(`beam_jobs.pipeline.erasure`) replaces a committed run by a redacted copy with `replace_run`: one state.json
write swaps the new id into the old one's place, `processed` untouched.

Every state.json write is a compare-and-swap (`infra.storage.conditional.update_json`): read it with its ETag,
apply a pure change (`with_run`, `with_run_replaced`), write it back with `If-Match`; if another writer got in
between, re-read and re-apply. So concurrent commits and an erasure's swap all land, in some order. Launches take
turns through a lease (`beam_jobs.pipeline.lease`); should two runs still cover one manifest (a holder that outlived
its lease), `read_committed` keeps one row per id.
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio
from minio.error import S3Error

from beam_jobs.pipeline.sinks import PartInfo
from beam_jobs.records import DEAD_LETTER_SCHEMA, DETECTION_SCHEMA, MODEL_FAILED, PHOTO_SCHEMA
from infra.storage.conditional import DEFAULT_RETRY, Document, RetryPolicy, update_json
from infra.storage.evidence import read_json, store_json
from infra.storage.objects import is_missing, read_bytes

STATE_KEY = "extract/state.json"
RUNS_PREFIX = "extract/runs/"
SUCCESS_NAME = "_SUCCESS.json"
SCHEMAS = {"photos": PHOTO_SCHEMA, "dead_letters": DEAD_LETTER_SCHEMA, "detections": DETECTION_SCHEMA}
ID_COLUMNS = {"photos": "photo_id", "detections": "detection_id"}


class RunVerificationError(RuntimeError):
    """A run's output does not account for its input; it must not be committed."""


@dataclass(frozen=True)
class CatalogState:
    runs: tuple[str, ...] = ()
    processed: frozenset[str] = field(default_factory=frozenset)


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: `20261123T114501Z-3f9a0c1d`."""
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def run_prefix(run_id: str) -> str:
    return f"{RUNS_PREFIX}{run_id}/"


def state_from_document(document: Document | None) -> CatalogState:
    """state.json's contents as a CatalogState (None: no state.json yet, nothing committed)."""
    if document is None:
        return CatalogState()
    return CatalogState(tuple(document["runs"]), frozenset(document["processed"]))


def state_document(state: CatalogState) -> Document:
    return {"runs": list(state.runs), "processed": sorted(state.processed)}


def load_state(client: Minio, bucket: str) -> CatalogState:
    try:
        doc = read_json(client, bucket, STATE_KEY)
    except S3Error as error:
        if is_missing(error):
            return CatalogState()
        raise
    return state_from_document(doc)


def with_run(state: CatalogState, run_id: str, manifests: Iterable[str]) -> CatalogState:
    """`state` with `run_id` committed last and its manifests processed; unchanged if it is already committed."""
    if run_id in state.runs:
        return state
    return CatalogState((*state.runs, run_id), state.processed | frozenset(manifests))


def with_run_replaced(state: CatalogState, old_run_id: str, new_run_id: str) -> CatalogState:
    """`state` with `new_run_id` in committed `old_run_id`'s place (so which run wins a repeated id is unchanged),
    `processed` untouched; unchanged if the swap is already done. Raises RunVerificationError if `old_run_id` is
    not committed."""
    if new_run_id in state.runs and old_run_id not in state.runs:
        return state
    if old_run_id not in state.runs:
        raise RunVerificationError(f"run {old_run_id} is no longer committed; not swapping in {new_run_id}")
    return CatalogState(tuple(new_run_id if run == old_run_id else run for run in state.runs), state.processed)


def update_state(
    client: Minio, bucket: str, change: Callable[[CatalogState], CatalogState], *, policy: RetryPolicy = DEFAULT_RETRY
) -> CatalogState:
    """Apply the pure `change` to state.json without losing a concurrent writer's update; returns the new state.
    Raises `conditional.UpdateConflict` if every try lost to another writer."""
    document = update_json(client, bucket, STATE_KEY,
                           lambda current: state_document(change(state_from_document(current))), policy=policy)
    return state_from_document(document)


def pending_manifests(all_keys: Iterable[str], state: CatalogState) -> list[str]:
    """Manifest keys not processed by any committed run, sorted."""
    return sorted(set(all_keys) - state.processed)


def input_rows(table: str, rows: pa.Table) -> int:
    """How many input manifests a part's rows account for: one per photo and per dead letter, except
    `model_failed` dead letters, whose photo row already stands for the manifest."""
    if table == "photos":
        return rows.num_rows
    if table == "dead_letters":
        return rows.num_rows - sum(reason == MODEL_FAILED for reason in rows.column("reason").to_pylist())
    return 0


def verify_run(client: Minio, bucket: str, run_id: str, *, expected_inputs: int) -> list[PartInfo]:
    """Re-read every part of the run, check hashes and schemas, and that photos + dead letters == inputs
    (`input_rows`: a `model_failed` dead letter does not count, its photo does)."""
    parts: list[PartInfo] = []
    accounted = 0
    for item in client.list_objects(bucket, prefix=run_prefix(run_id), recursive=True):
        key = item.object_name or ""
        name = key.rsplit("/", 1)[-1]
        table = name.rsplit("-", 1)[0]
        if name == SUCCESS_NAME or table not in SCHEMAS:
            continue
        data = read_bytes(client, bucket, key)
        parquet = pq.read_table(io.BytesIO(data))
        if not parquet.schema.equals(SCHEMAS[table]):
            raise RunVerificationError(f"{key}: schema differs from the {table} schema")
        parts.append(PartInfo(table, key, parquet.num_rows, hashlib.sha256(data).hexdigest()))
        accounted += input_rows(table, parquet)
    if accounted != expected_inputs:
        raise RunVerificationError(
            f"run {run_id}: {accounted} photo + dead-letter rows for {expected_inputs} manifests; not committing"
        )
    return sorted(parts, key=lambda part: part.key)


def write_success(
    client: Minio, bucket: str, run_id: str, *, parts: Sequence[PartInfo], manifests: Sequence[str], extracted_by: str,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """The run's `_SUCCESS.json`: its verified parts and the manifests it accounts for (`extra`: more fields)."""
    store_json(client, bucket, f"{run_prefix(run_id)}{SUCCESS_NAME}", {
        **(extra or {}),
        "run_id": run_id,
        "extracted_by": extracted_by,
        "committed_at": datetime.now(UTC).isoformat(),
        "parts": [{"table": p.table, "key": p.key, "rows": p.rows, "sha256": p.sha256} for p in parts],
        "manifests": list(manifests),
    })


def read_success(client: Minio, bucket: str, run_id: str) -> dict[str, Any]:
    return read_json(client, bucket, f"{run_prefix(run_id)}{SUCCESS_NAME}")


def commit_run(
    client: Minio, bucket: str, run_id: str, *, parts: Sequence[PartInfo], manifests: Sequence[str], extracted_by: str,
    extra: Mapping[str, Any] | None = None,
) -> CatalogState:
    """Write the run's `_SUCCESS.json` (`extra`: more fields, e.g. the model families it ran), then add it to
    state.json; returns the new state."""
    write_success(client, bucket, run_id, parts=parts, manifests=manifests, extracted_by=extracted_by, extra=extra)
    return update_state(client, bucket, lambda state: with_run(state, run_id, manifests))


def replace_run(client: Minio, bucket: str, old_run_id: str, new_run_id: str) -> CatalogState:
    """Swap committed `old_run_id` for the already written and verified `new_run_id` (`with_run_replaced`); one
    state.json write, so readers see one or the other. Raises RunVerificationError if `old_run_id` is not committed.
    """
    return update_state(client, bucket, lambda state: with_run_replaced(state, old_run_id, new_run_id))


def read_part(client: Minio, bucket: str, part: Mapping[str, Any]) -> pa.Table:
    """One committed part (a `_SUCCESS.json` "parts" entry), refused if its bytes no longer match the sha256."""
    data = read_bytes(client, bucket, part["key"])
    if hashlib.sha256(data).hexdigest() != part["sha256"]:
        raise RunVerificationError(f"{part['key']} no longer matches its committed sha256")
    return conformed(part["table"], pq.read_table(io.BytesIO(data)))


def conformed(table: str, rows: pa.Table) -> pa.Table:
    """`rows` of a committed part in today's schema of `table`: a nullable column added since the part was written
    reads as nulls (committed parts are never rewritten in place, so old runs keep their old schema)."""
    schema = SCHEMAS[table]
    if rows.schema.equals(schema):
        return rows
    columns = []
    for column in schema:
        if column.name in rows.column_names:
            columns.append(rows.column(column.name).cast(column.type))
        elif column.nullable:
            columns.append(pa.nulls(rows.num_rows, column.type))
        else:
            raise RunVerificationError(f"a committed {table} part lacks the required column {column.name!r}")
    return pa.Table.from_arrays(columns, schema=schema)


def read_committed(
    client: Minio, catalog_bucket: str, table: str = "photos", run_ids: Sequence[str] | None = None
) -> pa.Table:
    """Committed rows of `table` ("photos", "dead_letters", "detections") as one Arrow table: of every committed
    run, or of the committed runs `run_ids` only (an indexer adding just the runs it lacks).

    Newest run first wins when two runs hold the same id (concurrent launches).
    """
    if table not in SCHEMAS:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(SCHEMAS)}")
    pieces: list[pa.Table] = []
    runs = load_state(client, catalog_bucket).runs if run_ids is None else tuple(run_ids)
    for run_id in reversed(runs):
        success = read_success(client, catalog_bucket, run_id)
        pieces += [read_part(client, catalog_bucket, part) for part in success["parts"] if part["table"] == table]
    if not pieces:
        return SCHEMAS[table].empty_table()
    combined = pa.concat_tables(pieces)
    id_column = ID_COLUMNS.get(table)
    if id_column is None:
        return combined
    ids = combined.column(id_column).to_pylist()
    first: dict[str, int] = {}
    for index, value in enumerate(ids):
        first.setdefault(value, index)
    return combined.take(pa.array(sorted(first.values()), type=pa.int64())) if len(first) < len(ids) else combined


