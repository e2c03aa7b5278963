"""Write-once, content-addressed originals and their submission manifests in the `evidence` bucket.

Keys are derived from the SHA-256 of the bytes, never from anything a witness sent (file names are hostile
input), so the same photo uploaded twice is one object. Every write is read back and re-hashed before the
caller may acknowledge it.
"""

from __future__ import annotations

import json
import logging
from typing import IO, Any, BinaryIO, cast

from minio import Minio
from minio.error import S3Error

from infra.storage.integrity import IntegrityError, verify_stored
from infra.storage.objects import SHA256_META, StoredObject, is_missing, read_bytes, store_bytes

log = logging.getLogger(__name__)
_HEX = frozenset("0123456789abcdef")


def original_key(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def manifest_key(*, event_id: str, submission_id: str, sha256: str) -> str:
    return f"manifests/{event_id}/{submission_id}/{sha256}.json"


def _existing(client: Minio, bucket: str, key: str) -> tuple[str | None, int] | None:
    try:
        stat = client.stat_object(bucket, key)
    except S3Error as error:
        if is_missing(error):
            return None
        raise
    return stat.version_id, int(stat.size or 0)


def store_original(
    client: Minio,
    bucket: str,
    *,
    stream: IO[bytes],
    size: int,
    sha256: str,
    content_type: str,
) -> StoredObject:
    """Store `stream` (exactly `size` bytes hashing to `sha256`) once, and prove it is stored intact.

    If the key exists, the stored bytes are re-hashed instead of uploading again; a mismatch there means the
    existing copy is damaged, and we add a fresh version (the damaged one stays, locked, for forensics).
    """
    key = original_key(sha256)
    existing = _existing(client, bucket, key)
    if existing is not None:
        version_id, stored_size = existing
        try:
            verify_stored(client, bucket, key, sha256, version_id)
            return StoredObject(bucket, key, version_id, sha256, stored_size, created=False)
        except IntegrityError as damaged:
            log.error("existing original is damaged, storing a fresh version: %s", damaged)
    result = client.put_object(
        bucket, key, cast(BinaryIO, stream), size, content_type=content_type, metadata={SHA256_META: sha256}
    )
    verify_stored(client, bucket, key, sha256, result.version_id)
    return StoredObject(bucket, key, result.version_id, sha256, size, created=True)


def store_json(client: Minio, bucket: str, key: str, document: dict[str, Any]) -> StoredObject:
    """Write a small JSON document and verify it the same way as an original."""
    body = json.dumps(document, sort_keys=True, indent=2).encode()
    return store_bytes(client, bucket, key, body, "application/json")


def read_json(client: Minio, bucket: str, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(read_bytes(client, bucket, key))
    return document
