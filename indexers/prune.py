"""Delete published index versions that still hold erased photos, and stale copies of versions on local disk.

    outcomes = [prune_versions(client, "catalog", kind, gone_submission_ids=gone) for kind in INDEX_KINDS]
    prune_local(cache_root, "face", keep={"20261123T114501Z-3f9a0c1d"})

A version older than the one `CURRENT.json` names is deleted (every object version under its prefix) when its
`details.parquet` holds a row of an erased or withdrawn submission, or a gone photo id, or when it is incomplete
(no `release.json`, which is uploaded last, or no readable details: an upload that died; no pointer can name it
any more), or when it was released but never served (the pointer's remembered history, `Pointer.served`, moved
past it without naming it: its publisher died before the pointer write, or lost the race for it). Versions that
were served and hold no erased rows stay, for rollback. Never deleted: the version the pointer names, and
versions newer than it (maybe being published right now; a later prune takes them once the pointer has moved
past). Noncurrent object versions under any version prefix are deleted too: readers only read the latest, each
checked against `release.json`.

Why this is safe for a server still serving an old version: `read_local` loads a version whole into memory
(index, metadata, details), so deleting it from the bucket or from the server's cache directory does not
disturb the queries it answers until it swaps; a server that had read the old pointer and is still downloading
gets `CorruptVersionError`, keeps what it serves and picks up the new pointer on its next refresh. Only the
crops and thumbnails are read lazily (presigned URLs), and the erasure deletes those of erased photos first.
Whether the current version is clean is reported (`current_clean`): until a new index version without the
erased rows is published, the served one still holds them, and the caller reports that as pending.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from minio import Minio
from minio.error import S3Error

from indexers.s3_versions import (
    DETAILS_FILE,
    INDEX_ROOT,
    POINTER_NAME,
    RELEASE_FILE,
    Pointer,
    prune_cache,
    read_pointer,
    version_prefix,
)
from infra.storage.objects import delete_versions, is_missing, read_bytes

#: A download staging directory untouched this long belongs to a fetch that died (fetches take seconds).
STALE_STAGING_S = 3600.0


class PruneFailed(RuntimeError):
    """The object store refused some deletions; the next prune retries them."""


@dataclass(frozen=True)
class PruneOutcome:
    kind: str
    current: str | None  # the version the pointer names (None: nothing published)
    current_clean: bool  # the current version holds no erased row
    deleted_versions: tuple[str, ...] = ()
    deleted_objects: int = 0  # object versions, noncurrent ones of kept versions included
    kept_newer: tuple[str, ...] = ()  # newer than the pointer, holding gone rows or incomplete: left alone


@dataclass(frozen=True)
class _Object:
    key: str
    version_id: str | None
    latest: bool


def holds_gone_rows(details: pa.Table, gone_submission_ids: Collection[str], gone_photo_ids: Collection[str]) -> bool:
    """Whether an index version's details (`catalog_index.DETAILS_SCHEMA`) hold a row of a gone photo."""
    def any_in(column: str, values: Collection[str]) -> bool:
        if not values or not details.num_rows:
            return False
        mask = pc.is_in(details.column(column), value_set=pa.array(sorted(values), pa.string()))
        return bool(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool).any())

    return any_in("submission_id", gone_submission_ids) or any_in("photo_id", gone_photo_ids)


def never_served(version: str, pointer: Pointer) -> bool:
    """Whether `version` (older than the pointer's) was provably never served: it falls inside the pointer's
    remembered history but is not in it. A publisher that died between `release.json` and the pointer leaves
    such a version, and so does one whose pointer move was refused (`PointerMovedError`): no pointer can name
    it later, since publishers only move the pointer forward from the version they started from."""
    return pointer.served is not None and version >= pointer.served[0] and version not in pointer.served


def _objects_by_version(client: Minio, bucket: str, kind: str) -> dict[str, list[_Object]]:
    root = f"{INDEX_ROOT}/{kind}/"
    versions: dict[str, list[_Object]] = {}
    for item in client.list_objects(bucket, prefix=root, recursive=True, include_version=True):
        key = item.object_name or ""
        rest = key[len(root):]
        if "/" not in rest or rest == POINTER_NAME:  # the pointer itself (and its history) only names versions
            continue
        versions.setdefault(rest.split("/", 1)[0], []).append(
            _Object(key, item.version_id, str(item.is_latest).lower() == "true" and not item.is_delete_marker))
    return versions


def _details(client: Minio, bucket: str, kind: str, version: str) -> pa.Table | None:
    """The version's details, or None when there are none to read (an upload that died half way)."""
    try:
        return pq.read_table(io.BytesIO(read_bytes(client, bucket, version_prefix(kind, version) + DETAILS_FILE)))
    except S3Error as error:
        if is_missing(error):
            return None
        raise
    except (OSError, pa.ArrowInvalid):
        return None


def _delete(client: Minio, bucket: str, objects: Iterable[_Object]) -> int:
    return delete_versions(client, bucket, ((o.key, o.version_id) for o in objects), failure=PruneFailed)


def prune_versions(client: Minio, bucket: str, kind: str, *, gone_submission_ids: Collection[str],
                   gone_photo_ids: Collection[str] = ()) -> PruneOutcome:
    """Delete the versions of `kind` older than the served one that hold gone rows (see the module docstring)."""
    pointer = read_pointer(client, bucket, kind)
    if pointer is None:
        return PruneOutcome(kind, None, True)
    deleted, newer, count, current_clean = [], [], 0, True
    for version, objects in sorted(_objects_by_version(client, bucket, kind).items()):
        # details.parquet is uploaded first, release.json last: a builder killed in between leaves details only.
        released = any(o.latest and o.key == version_prefix(kind, version) + RELEASE_FILE for o in objects)
        orphan = version < pointer.version and never_served(version, pointer)  # no rollback target
        details = _details(client, bucket, kind, version) if released and not orphan else None
        gone = details is None or holds_gone_rows(details, gone_submission_ids, gone_photo_ids)
        if version > pointer.version:  # names sort by publication time (`new_version_name`)
            newer += [version] if gone else []
            continue
        if version == pointer.version:
            current_clean = not gone
        elif gone:
            count += _delete(client, bucket, objects)
            deleted.append(version)
            continue
        count += _delete(client, bucket, [o for o in objects if not o.latest])
    return PruneOutcome(kind, pointer.version, current_clean, tuple(deleted), count, tuple(newer))


def prune_local(cache_root: Path, kind: str, keep: Collection[str], *, now: float | None = None) -> list[str]:
    """Delete cached copies of `kind` other than `keep`, and download staging left by a fetch that died.
    Returns the names removed. A version being served stays usable: it is held in memory (see above)."""
    removed = prune_cache(cache_root, kind, set(keep))
    moment = time.time() if now is None else now
    for staging in sorted((cache_root / kind).glob(".fetch-*")):
        if staging.is_dir() and moment - staging.stat().st_mtime > STALE_STAGING_S:
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging.name)
    return removed
