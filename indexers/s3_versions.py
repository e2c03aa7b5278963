"""Index versions in the `catalog` bucket, and a verified local cache of them for the search service.

    indexes/<kind>/<version>/index.faiss, metadata.parquet, tombstones.npy, manifest.json   (storage_format)
                             details.parquet                                               (result details)
                             release.json     kind, version, run ids, sha256 + size of every file above
    indexes/<kind>/CURRENT.json               {"version", "release_sha256", "published_at"}: what is served

Publishing uploads every file (each re-read and hashed), then `release.json`, and only then rewrites the
pointer, so a publisher that dies at any step leaves the previous version served. Readers follow the
pointer only: `fetch_version` downloads into a hidden staging directory, checks `release.json` against
the pointer's digest and every file against `release.json`, and renames the directory into the cache;
`read_local` verifies again before deserialising (`storage_format.load_version`). A half-written or
altered version is refused with `CorruptVersionError` and never served.

One indexer publishes a kind at a time; `point_to(expect_previous=...)` refuses to move a pointer that
changed since the build started, so two racing builders cannot silently drop each other's runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio
from minio.error import S3Error

from indexers.catalog_index import KindIndex
from indexers.storage_format import MANIFEST, CorruptVersionError, load_version, save_version
from infra.faults import CrashPoint, crash_point
from infra.storage.evidence import SHA256_META, read_json, store_json
from infra.storage.integrity import sha256_of_stream, verify_stored

INDEX_ROOT = "indexes"
POINTER_NAME = "CURRENT.json"
DETAILS_FILE = "details.parquet"
RELEASE_FILE = "release.json"
_MISSING = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})


class PointerMovedError(RuntimeError):
    """Another publisher moved the pointer since this build started from it."""


#: How many of the versions a pointer has named it remembers (`Pointer.served`): enough to cover every rollback
#: candidate, small enough that the pointer, read by every server on each refresh, stays a few kB.
SERVED_HISTORY = 100


@dataclass(frozen=True)
class Pointer:
    kind: str
    version: str
    release_sha256: str
    published_at: str
    # The versions this pointer has named, oldest first, ending with `version` (at most SERVED_HISTORY). None for
    # a pointer written before the history was kept: then nothing is known about which versions were served.
    served: tuple[str, ...] | None = None


def version_prefix(kind: str, version: str) -> str:
    return f"{INDEX_ROOT}/{kind}/{version}/"


def pointer_key(kind: str) -> str:
    return f"{INDEX_ROOT}/{kind}/{POINTER_NAME}"


def new_version_name(now: datetime | None = None) -> str:
    """Sortable by publication time and unique: `20261123T114501123456Z-3f9a0c1d`.

    Microseconds, because pruning tells older from newer versions by name: two versions of one second would
    otherwise be ordered by their random suffix (a version published right after another looked older).
    """
    return f"{(now or datetime.now(UTC)).strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}"


def _sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return sha256_of_stream(handle)[0]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_local(root: Path, version: str, built: KindIndex) -> Path:
    """Write `built` as `<root>/<version>` (storage_format files, details, then release.json last)."""
    path = save_version(root, version, built.index, built.meta, source_run_ids=built.run_ids)
    sink = io.BytesIO()
    pq.write_table(built.details, sink)
    _write_atomic(path / DETAILS_FILE, sink.getvalue())
    files = {item.name: {"sha256": _sha256_file(item), "size": item.stat().st_size}
             for item in sorted(path.iterdir()) if item.is_file() and item.name != RELEASE_FILE}
    release = {"kind": built.kind, "version": version, "run_ids": list(built.run_ids),
               "created_at": datetime.now(UTC).isoformat(), "files": files}
    _write_atomic(path / RELEASE_FILE, json.dumps(release, indent=2, sort_keys=True).encode())
    return path


def _release(path: Path) -> dict[str, Any]:
    try:
        release: dict[str, Any] = json.loads((path / RELEASE_FILE).read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptVersionError(f"{path}: {RELEASE_FILE} missing or unreadable: {exc}") from exc
    if not isinstance(release.get("files"), dict) or DETAILS_FILE not in release["files"]:
        raise CorruptVersionError(f"{path}: {RELEASE_FILE} does not list {DETAILS_FILE}")
    return release


def read_local(path: Path) -> KindIndex:
    """Verify and load a local version directory written by `write_local` or `fetch_version`."""
    release = _release(path)
    blobs = {}
    for name in (DETAILS_FILE, MANIFEST):  # the manifest pins the three storage_format files
        try:
            blobs[name] = (path / name).read_bytes()
        except OSError as exc:
            raise CorruptVersionError(f"{path}: {name} unreadable: {exc}") from exc
        if hashlib.sha256(blobs[name]).hexdigest() != release["files"].get(name, {}).get("sha256"):
            raise CorruptVersionError(f"{path}: {name} does not match {RELEASE_FILE}")
    index, meta, manifest = load_version(path)
    details = pq.read_table(pa.BufferReader(blobs[DETAILS_FILE]))
    return KindIndex(manifest["kind"], index, meta, details, tuple(manifest["source_run_ids"])).warm()


def upload_version(client: Minio, bucket: str, path: Path) -> tuple[str, str, str]:
    """Upload a local version (files, then release.json); returns (kind, version, release sha256)."""
    release = _release(path)
    kind, version = str(release["kind"]), str(release["version"])
    prefix = version_prefix(kind, version)
    for name, info in sorted(release["files"].items()):
        result = client.fput_object(bucket, prefix + name, str(path / name), metadata={SHA256_META: info["sha256"]})
        verify_stored(client, bucket, prefix + name, info["sha256"], result.version_id)
    body = (path / RELEASE_FILE).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    result = client.put_object(bucket, prefix + RELEASE_FILE, io.BytesIO(body), len(body),
                               content_type="application/json", metadata={SHA256_META: digest})
    verify_stored(client, bucket, prefix + RELEASE_FILE, digest, result.version_id)
    return kind, version, digest


def read_pointer(client: Minio, bucket: str, kind: str) -> Pointer | None:
    """The served version of `kind`, or None when nothing was published yet."""
    try:
        doc = read_json(client, bucket, pointer_key(kind))
    except S3Error as error:
        if error.code in _MISSING:
            return None
        raise
    served = doc.get("served")
    return Pointer(kind, str(doc["version"]), str(doc["release_sha256"]), str(doc["published_at"]),
                   tuple(str(v) for v in served) if isinstance(served, list) else None)


def point_to(client: Minio, bucket: str, kind: str, version: str, release_sha256: str, *,
             expect_previous: str | None = None) -> Pointer:
    """Make `version` the served one. `expect_previous`: the version the build started from (None: none)."""
    current = read_pointer(client, bucket, kind)
    if (current.version if current else None) != expect_previous:
        raise PointerMovedError(f"{kind}: pointer is at {current.version if current else None}, build started "
                                f"from {expect_previous}; rebuild from the new version")
    earlier = (current.served or (current.version,)) if current else ()
    served = (*earlier, version)[-SERVED_HISTORY:]
    pointer = Pointer(kind, version, release_sha256, datetime.now(UTC).isoformat(), served)
    store_json(client, bucket, pointer_key(kind), {"version": version, "release_sha256": release_sha256,
                                                   "published_at": pointer.published_at, "served": list(served)})
    return pointer


def publish_version(client: Minio, bucket: str, path: Path, *, expect_previous: str | None) -> Pointer:
    """Upload a local version and then, last, point `CURRENT.json` at it."""
    kind, version, digest = upload_version(client, bucket, path)
    crash_point(CrashPoint.INDEX_RELEASED_NOT_POINTED)
    return point_to(client, bucket, kind, version, digest, expect_previous=expect_previous)


def _get(client: Minio, bucket: str, key: str) -> bytes:
    response = client.get_object(bucket, key)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def fetch_version(client: Minio, bucket: str, pointer: Pointer, cache_root: Path) -> Path:
    """The pointer's version, verified, in `<cache_root>/<kind>/<version>` (downloaded if absent)."""
    final = cache_root / pointer.kind / pointer.version
    if final.is_dir():
        return final
    prefix = version_prefix(pointer.kind, pointer.version)
    try:
        body = _get(client, bucket, prefix + RELEASE_FILE)
    except S3Error as error:
        raise CorruptVersionError(f"{pointer.kind}/{pointer.version}: {RELEASE_FILE} unreadable: {error}") from error
    if hashlib.sha256(body).hexdigest() != pointer.release_sha256:
        raise CorruptVersionError(f"{pointer.kind}/{pointer.version}: {RELEASE_FILE} does not match the pointer")
    release = json.loads(body)
    staging = final.parent / f".fetch-{pointer.version}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        for name, info in sorted(release["files"].items()):
            if "/" in name or name.startswith("."):
                raise CorruptVersionError(f"{pointer.kind}/{pointer.version}: bad file name {name!r}")
            try:
                client.fget_object(bucket, prefix + name, str(staging / name))
            except S3Error as error:
                raise CorruptVersionError(f"{prefix}{name} unreadable: {error}") from error
            if _sha256_file(staging / name) != info["sha256"]:
                raise CorruptVersionError(f"{prefix}{name} does not match {RELEASE_FILE}")
        _write_atomic(staging / RELEASE_FILE, body)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def load_published(client: Minio, bucket: str, kind: str, cache_root: Path) -> tuple[Pointer, KindIndex] | None:
    """Fetch (if needed), verify and load the served version of `kind`; None when none is published."""
    pointer = read_pointer(client, bucket, kind)
    if pointer is None:
        return None
    path = fetch_version(client, bucket, pointer, cache_root)
    try:
        return pointer, read_local(path)
    except CorruptVersionError:
        # The cached copy was damaged on local disk: drop it and verify a fresh download instead.
        shutil.rmtree(path)
        return pointer, read_local(fetch_version(client, bucket, pointer, cache_root))


def prune_cache(cache_root: Path, kind: str, keep: set[str]) -> list[str]:
    """Delete cached versions of `kind` other than `keep` (e.g. the served one); returns the removed names."""
    removed = []
    for item in sorted((cache_root / kind).glob("*")):
        if item.is_dir() and item.name not in keep and not item.name.startswith("."):
            shutil.rmtree(item)
            removed.append(item.name)
    return removed
