"""Hashing and write verification: what we stored must be what we were given, byte for byte.

Two ways to prove a write, chosen once per process by `choose_verification`:

* `SERVER_CHECKSUM`: every PUT carries `x-amz-checksum-sha256`, the SHA-256 we took of the bytes as they arrived.
  The server hashes the body it receives and refuses it (`BadDigest` on SeaweedFS and AWS,
  `XAmzContentChecksumMismatch` on MinIO) before anything is stored, and its success reply names the checksum it
  checked (S3 echoes `x-amz-checksum-sha256`). Where a reply carries none, a HEAD of the written version shows its
  size and the checksum the server recorded. Only used after a probe has seen this server refuse a wrong checksum.
* `READ_BACK`: read the whole object back and re-hash it, for servers that do not check (or record) the checksum.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import IO

from minio import Minio
from minio.error import S3Error
from minio.helpers import DictType

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
CHECKSUM_HEADER = "x-amz-checksum-sha256"
PAYLOAD_SHA256 = "x-amz-content-sha256"  # SigV4's payload hash (hex); see client.PrehashedMinio
CHECKSUM_MODE: DictType = {"x-amz-checksum-mode": "ENABLED"}  # HEAD/GET return the stored checksum only when asked
# What S3 servers answer when a body does not hash to the checksum (or Content-MD5 / signed SHA-256) it was sent with.
REFUSED_DIGEST_CODES = frozenset(
    {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
)
PROBE_PREFIX = "_probes/checksum-"


class Verification(StrEnum):
    SERVER_CHECKSUM = "server-checksum"
    READ_BACK = "read-back"


class IntegrityError(Exception):
    """The object in S3 does not hash to what was written (or the server refused the bytes as damaged)."""

    def __init__(self, bucket: str, key: str, expected: str, actual: str, message: str | None = None) -> None:
        super().__init__(message or f"s3://{bucket}/{key}: stored bytes hash to {actual}, expected {expected}")
        self.bucket, self.key, self.expected, self.actual = bucket, key, expected, actual


class ChecksumRefused(IntegrityError):
    """The server hashed the body it received, found it does not match our checksum and stored nothing."""

    def __init__(self, bucket: str, key: str, expected: str, code: str) -> None:
        message = f"s3://{bucket}/{key}: the server refused the body ({code}): it does not hash to {expected}"
        super().__init__(bucket, key, expected, f"refused by the server ({code})", message)
        self.code = code


def sha256_of_stream(stream: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def checksum_value(sha256_hex: str) -> str:
    """The `x-amz-checksum-sha256` form of a hex SHA-256: base64 of the 32 raw bytes."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def checksum_headers(sha256_hex: str) -> DictType:
    """Headers for `put_object(metadata=...)` (minio passes `x-amz-*` keys through unprefixed)."""
    return {CHECKSUM_HEADER: checksum_value(sha256_hex)}


def checksum_in_reply(headers: Mapping[str, str]) -> str | None:
    """The SHA-256 (hex) a PUT's success reply says the server checked the body against, or None if it names none."""
    echoed = headers.get(CHECKSUM_HEADER)
    try:
        return base64.b64decode(echoed, validate=True).hex() if echoed else None
    except binascii.Error:
        return None


def refused_digest(error: S3Error) -> bool:
    return error.code in REFUSED_DIGEST_CODES


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


def server_checksum(client: Minio, bucket: str, key: str, version_id: str | None) -> tuple[str | None, int, str | None]:
    """(sha256 hex the server recorded at write time or None, size, version id) from one HEAD."""
    stat = client.stat_object(bucket, key, version_id=version_id, extra_headers=CHECKSUM_MODE)
    recorded = stat.metadata.get(CHECKSUM_HEADER) if stat.metadata else None
    sha256 = base64.b64decode(recorded).hex() if recorded else None
    return sha256, int(stat.size or 0), stat.version_id


def verify_written(
    client: Minio,
    bucket: str,
    key: str,
    *,
    sha256: str,
    size: int,
    version_id: str | None,
    verification: Verification,
    acknowledged_sha256: str | None = None,
) -> None:
    """Prove the version just written holds `size` bytes hashing to `sha256`; raises IntegrityError if not.

    With SERVER_CHECKSUM the server has already hashed the body against our checksum and refused a mismatch before
    storing anything. Its success reply naming our checksum (`acknowledged_sha256`, from `checksum_in_reply`) is
    then the proof: a HEAD would only ask the same server to say it again. Without that, a HEAD shows the version
    exists, has our size and carries our checksum; if the server kept no checksum for it, we cannot lean on the
    server and read the object back instead.
    """
    if verification is Verification.SERVER_CHECKSUM and acknowledged_sha256 is not None:
        if acknowledged_sha256 != sha256:
            raise IntegrityError(bucket, key, sha256, f"{acknowledged_sha256} (the server's reply to the PUT)")
        return
    if verification is Verification.SERVER_CHECKSUM:
        recorded, stored_size, stored_version = server_checksum(client, bucket, key, version_id)
        if recorded is not None:
            if version_id is not None and stored_version != version_id:
                raise IntegrityError(bucket, key, sha256, f"version {stored_version} instead of {version_id}")
            if recorded != sha256 or stored_size != size:
                raise IntegrityError(bucket, key, sha256, f"{recorded} ({stored_size} bytes, expected {size})")
            return
        log.warning("s3://%s/%s has no server checksum; verifying by reading it back", bucket, key)
    verify_stored(client, bucket, key, sha256, version_id)


def server_verifies_checksums(client: Minio, bucket: str) -> bool:
    """Ask the server itself: True if it refuses a body sent with a wrong `x-amz-checksum-sha256` and records the
    right one. Uses a throwaway key in `bucket` (which must not be under object lock) and removes what it wrote."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    body = f"witness checksum probe {key}".encode()
    wrong = hashlib.sha256(body + b" (not these bytes)").hexdigest()
    try:
        accepted = client.put_object(bucket, key, io.BytesIO(body), len(body), metadata=checksum_headers(wrong))
    except S3Error as error:
        if not refused_digest(error):
            raise
    else:
        _remove_probe(client, bucket, key, accepted.version_id)
        return False
    right = hashlib.sha256(body).hexdigest()
    written = client.put_object(bucket, key, io.BytesIO(body), len(body), metadata=checksum_headers(right))
    try:
        recorded, _, _ = server_checksum(client, bucket, key, written.version_id)
    finally:
        _remove_probe(client, bucket, key, written.version_id)
    return recorded == right


def _remove_probe(client: Minio, bucket: str, key: str, version_id: str | None) -> None:
    try:
        client.remove_object(bucket, key, version_id=version_id)
    except S3Error as error:  # a leftover probe of a few bytes is harmless; not starting would not be
        log.warning("could not remove the checksum probe s3://%s/%s: %s", bucket, key, error)


def choose_verification(client: Minio, probe_bucket: str) -> Verification:
    """SERVER_CHECKSUM where the server proves it enforces checksums, READ_BACK (slower, as safe) elsewhere."""
    if server_verifies_checksums(client, probe_bucket):
        return Verification.SERVER_CHECKSUM
    log.warning("the S3 server does not enforce x-amz-checksum-sha256: every write is verified by reading it back")
    return Verification.READ_BACK
