"""Write-once, content-addressed originals and their submission manifests in the `evidence` bucket.

Keys are derived from the SHA-256 of the bytes, never from anything a witness sent (file names are hostile
input), so the same photo uploaded twice is one object. Every write is proven before the caller may acknowledge
it: by the server's own SHA-256 check on write plus a HEAD, or by reading it back (`integrity.Verification`).
"""

from __future__ import annotations

import json
import logging
from typing import IO, Any

from minio import Minio
from minio.error import S3Error

from infra.storage.client import PrehashedMinio
from infra.storage.integrity import IntegrityError, Verification, server_checksum, verify_stored
from infra.storage.objects import (
    SHA256_META,
    AlreadyStored,
    StoredObject,
    is_missing,
    put_verified,
    read_bytes,
    store_bytes,
)

log = logging.getLogger(__name__)
_HEX = frozenset("0123456789abcdef")


def original_key(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise ValueError(f"not a lowercase hex SHA-256: {sha256!r}")
    return f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def manifest_key(*, event_id: str, submission_id: str, sha256: str) -> str:
    return f"manifests/{event_id}/{submission_id}/{sha256}.json"


def _existing(client: Minio, bucket: str, key: str) -> tuple[str | None, int, str | None] | None:
    """(version id, size, server-recorded SHA-256 or None) of the current version, or None if there is none."""
    try:
        recorded, size, version_id = server_checksum(client, bucket, key, None)
    except S3Error as error:
        if is_missing(error):
            return None
        raise
    return version_id, size, recorded


def _verify_existing(
    client: Minio, bucket: str, key: str, *, sha256: str, size: int, found: tuple[str | None, int, str | None],
    verification: Verification,
) -> None:
    version_id, stored_size, recorded = found
    if verification is Verification.SERVER_CHECKSUM and recorded is not None:
        # The server hashed these bytes against this checksum when they were written, as it did for ours.
        if recorded != sha256 or stored_size != size:
            raise IntegrityError(bucket, key, sha256, f"{recorded} ({stored_size} bytes, expected {size})")
        return
    verify_stored(client, bucket, key, sha256, version_id)


def store_original(
    client: Minio,
    bucket: str,
    *,
    stream: IO[bytes],
    size: int,
    sha256: str,
    content_type: str,
    verification: Verification = Verification.READ_BACK,
) -> StoredObject:
    """Store `stream` (exactly `size` bytes hashing to `sha256`) once, and prove it is stored intact.

    If the key exists, its stored bytes are proven instead of uploading again; a mismatch there means the existing
    copy is damaged, and we add a fresh version (the damaged one stays, locked, for forensics). With our client
    the PUT itself asks "only if absent", so a new photo (the usual case) costs one request instead of a HEAD and
    a PUT; another client looks first.
    """
    key = original_key(sha256)
    if isinstance(client, PrehashedMinio):
        try:
            version_id = put_verified(
                client, bucket, key, stream, size=size, sha256=sha256, content_type=content_type,
                verification=verification, if_absent=True,
            )
            return StoredObject(bucket, key, version_id, sha256, size, created=True)
        except AlreadyStored:
            stream.seek(0)
    found = _existing(client, bucket, key)
    if found is not None:
        try:
            _verify_existing(client, bucket, key, sha256=sha256, size=size, found=found, verification=verification)
            return StoredObject(bucket, key, found[0], sha256, found[1], created=False)
        except IntegrityError as damaged:
            log.error("existing original is damaged, storing a fresh version: %s", damaged)
    version_id = put_verified(
        client, bucket, key, stream, size=size, sha256=sha256, content_type=content_type, verification=verification
    )
    return StoredObject(bucket, key, version_id, sha256, size, created=True)


def store_json(
    client: Minio,
    bucket: str,
    key: str,
    document: dict[str, Any],
    *,
    verification: Verification = Verification.READ_BACK,
) -> StoredObject:
    """Write a small JSON document and verify it the same way as an original."""
    body = json.dumps(document, sort_keys=True, indent=2).encode()
    return store_bytes(client, bucket, key, body, "application/json", verification=verification)


def read_json(client: Minio, bucket: str, key: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(read_bytes(client, bucket, key))
    return document


__all__ = [  # SHA256_META and StoredObject are re-exported: callers know them from here
    "SHA256_META", "StoredObject", "manifest_key", "original_key", "read_json", "store_json", "store_original",
]
