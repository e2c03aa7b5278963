"""Small verified reads and writes of whole objects, for the job's DoFns and its launcher.

Writes are read back and re-hashed (`infra.storage.integrity.verify_stored`) before the job counts them.
"""

from __future__ import annotations

import hashlib
import io

from minio import Minio
from minio.error import S3Error

from infra.storage.evidence import SHA256_META
from infra.storage.integrity import verify_stored

MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})


def is_missing(error: S3Error) -> bool:
    return error.code in MISSING_CODES


def get_bytes(client: Minio, bucket: str, key: str, version_id: str | None = None) -> bytes:
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def put_verified(client: Minio, bucket: str, key: str, data: bytes, content_type: str) -> str:
    """Write `data`, prove the stored copy hashes the same, return its sha256."""
    digest = hashlib.sha256(data).hexdigest()
    result = client.put_object(
        bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={SHA256_META: digest}
    )
    verify_stored(client, bucket, key, digest, result.version_id)
    return digest
