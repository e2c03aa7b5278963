"""Hashing helpers: what we stored must be what we were given, byte for byte."""

from __future__ import annotations

import hashlib
from typing import IO

from minio import Minio

CHUNK = 1024 * 1024


class IntegrityError(Exception):
    """The object read back from S3 does not hash to what was written."""

    def __init__(self, bucket: str, key: str, expected: str, actual: str) -> None:
        super().__init__(f"s3://{bucket}/{key}: stored bytes hash to {actual}, expected {expected}")
        self.bucket, self.key, self.expected, self.actual = bucket, key, expected, actual


def sha256_of_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def stored_sha256(client: Minio, bucket: str, key: str, version_id: str | None = None) -> str:
    """Re-read an object from the server and hash it (the server's ETag is MD5, and not for multipart)."""
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return sha256_of_stream(response)[0]  # type: ignore[arg-type]
    finally:
        response.close()
        response.release_conn()


def verify_stored(client: Minio, bucket: str, key: str, expected_sha256: str, version_id: str | None = None) -> None:
    actual = stored_sha256(client, bucket, key, version_id)
    if actual != expected_sha256:
        raise IntegrityError(bucket, key, expected_sha256, actual)
