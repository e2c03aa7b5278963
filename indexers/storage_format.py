"""The on-disk format of an index version; the only module in `indexers` that reads or writes files.

A version is a directory under a root:

    <root>/<version>/index.faiss        faiss.write_index of the IndexIDMap2
                     metadata.parquet   MetadataTable.to_arrow()
                     tombstones.npy     (t,) int64 removed ids still in an HNSW/refine index
                     manifest.json      kind, dim, count, index type, params, created_at,
                                        source run ids, sha256 of every other file and of
                                        the manifest's own other fields
    <root>/CURRENT                      name of the version being served

Writes never expose a partial version: files go to a hidden temp directory (each through a temp
file and `os.replace`), the manifest last, then the directory is renamed into place; `publish`
swaps `CURRENT` the same way. `load_version` reads each file once, checks its sha256 against the
manifest and only then deserialises those same bytes, so a corrupted or half-written version is
refused with `CorruptVersionError`. The lead's S3 layer uploads finished version directories.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from indexers.metadata import MetadataTable
from indexers.vector_index import IndexParams, IndexType, VectorIndex

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
POINTER = "CURRENT"
INDEX_FILE, METADATA_FILE, TOMBSTONES_FILE = "index.faiss", "metadata.parquet", "tombstones.npy"
_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class CorruptVersionError(RuntimeError):
    """A version directory is incomplete, altered or inconsistent; it must not be served."""


def _check_name(version: str) -> None:
    if not _VERSION_NAME.match(version):
        raise ValueError(f"version name {version!r} must match {_VERSION_NAME.pattern}")


def _write_atomic(path: Path, data: bytes) -> str:
    """Write `data` to `path` via a temp file, fsync and `os.replace`; returns its sha256 hex."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def save_version(root: Path, version: str, index: VectorIndex, meta: MetadataTable, *,
                 source_run_ids: Sequence[str], created_at: datetime | None = None) -> Path:
    """Write a complete, immutable version `<root>/<version>`; raises FileExistsError if it exists."""
    _check_name(version)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if final.exists():
        raise FileExistsError(f"index version {final} already exists; versions are immutable")
    staging = root / f".staging-{version}-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        sink = io.BytesIO()
        pq.write_table(meta.to_arrow(), sink)
        tombstones = io.BytesIO()
        np.save(tombstones, index.tombstones.astype(np.int64), allow_pickle=False)
        hashes = {
            INDEX_FILE: _write_atomic(staging / INDEX_FILE, faiss.serialize_index(index.index).tobytes()),
            METADATA_FILE: _write_atomic(staging / METADATA_FILE, sink.getvalue()),
            TOMBSTONES_FILE: _write_atomic(staging / TOMBSTONES_FILE, tombstones.getvalue()),
        }
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "kind": index.kind,
            "dim": index.dim,
            "count": len(index),
            "ntotal": int(index.index.ntotal),
            "metadata_rows": len(meta),
            "index_type": index.index_type.value,
            "params": asdict(index.params),
            "created_at": (created_at or datetime.now(UTC)).isoformat(),
            "source_run_ids": list(source_run_ids),
            "files": hashes,
        }
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        _write_atomic(staging / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of every manifest field but this one: catches a damaged manifest
    (integrity against accidents; tamper evidence is the audit chain's job, not this file's)."""
    body = {key: value for key, value in manifest.items() if key != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _read_verified(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    try:
        manifest = json.loads((path / MANIFEST).read_bytes())
    except (OSError, json.JSONDecodeError) as exc:
        raise CorruptVersionError(f"{path}: manifest missing or unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptVersionError(f"{path}: unsupported manifest (format_version "
                                  f"{manifest.get('format_version') if isinstance(manifest, dict) else None})")
    if manifest.get("manifest_sha256") != _manifest_digest(manifest):
        raise CorruptVersionError(f"{path}: manifest does not match its own sha256")
    files = manifest.get("files", {})
    if set(files) != {INDEX_FILE, METADATA_FILE, TOMBSTONES_FILE}:
        raise CorruptVersionError(f"{path}: manifest lists files {sorted(files)}")
    blobs: dict[str, bytes] = {}
    for name, expected in files.items():
        try:
            data = (path / name).read_bytes()
        except OSError as exc:
            raise CorruptVersionError(f"{path}: {name} unreadable: {exc}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise CorruptVersionError(f"{path}: {name} sha256 {actual} does not match manifest {expected}")
        blobs[name] = data
    return manifest, blobs


def verify(path: Path) -> dict[str, Any]:
    """Check that every file of the version matches its manifest hash; returns the manifest."""
    return _read_verified(path)[0]


def load_version(path: Path) -> tuple[VectorIndex, MetadataTable, dict[str, Any]]:
    """Verify, then load a version: (index, metadata, manifest)."""
    manifest, blobs = _read_verified(path)
    raw = faiss.deserialize_index(np.frombuffer(blobs[INDEX_FILE], dtype=np.uint8))
    if not isinstance(raw, faiss.IndexIDMap2):
        raise CorruptVersionError(f"{path}: index is {type(raw).__name__}, expected IndexIDMap2")
    tombstones = np.load(io.BytesIO(blobs[TOMBSTONES_FILE]), allow_pickle=False).astype(np.int64)
    index = VectorIndex(raw, kind=manifest["kind"], index_type=IndexType(manifest["index_type"]),
                        params=IndexParams(**manifest["params"]), tombstones=tombstones)
    meta = MetadataTable.from_arrow(pq.read_table(pa.BufferReader(blobs[METADATA_FILE])))
    if (index.dim, len(index), len(meta)) != (manifest["dim"], manifest["count"], manifest["metadata_rows"]):
        raise CorruptVersionError(f"{path}: dim/count/rows {(index.dim, len(index), len(meta))} disagree "
                                  f"with manifest {(manifest['dim'], manifest['count'], manifest['metadata_rows'])}")
    return index, meta, manifest


def publish(root: Path, version: str) -> None:
    """Point `CURRENT` at a verified version (atomic swap)."""
    _check_name(version)
    verify(root / version)
    _write_atomic(root / POINTER, version.encode())


def current_version(root: Path) -> str:
    """The version named by `CURRENT`; FileNotFoundError if none was published."""
    version = (root / POINTER).read_text().strip()
    _check_name(version)
    return version


def load_current(root: Path) -> tuple[VectorIndex, MetadataTable, dict[str, Any]]:
    return load_version(root / current_version(root))
