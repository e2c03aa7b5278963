"""Whole-object reads and verified writes, for every bucket: the one place that puts bytes and re-hashes them."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from minio import Minio
from minio.error import S3Error

from infra.storage.integrity import verify_stored

SHA256_META = "x-amz-meta-sha256"
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    created: bool  # False when identical bytes were already stored


def is_missing(error: S3Error) -> bool:
    return error.code in MISSING_CODES


def read_bytes(client: Minio, bucket: str, key: str, version_id: str | None = None) -> bytes:
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def store_bytes(client: Minio, bucket: str, key: str, data: bytes, content_type: str) -> StoredObject:
    """Write `data` and prove the stored copy hashes the same before anyone counts on it."""
    digest = hashlib.sha256(data).hexdigest()
    result = client.put_object(
        bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={SHA256_META: digest}
    )
    verify_stored(client, bucket, key, digest, result.version_id)
    return StoredObject(bucket, key, result.version_id, digest, len(data), created=True)
