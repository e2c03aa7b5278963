"""Whole-object reads and verified writes, for every bucket: the one place that puts bytes and proves them stored."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, BinaryIO, cast

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.helpers import DictType

from infra.storage.client import PrehashedMinio
from infra.storage.integrity import (
    PAYLOAD_SHA256,
    ChecksumRefused,
    Verification,
    checksum_headers,
    checksum_in_reply,
    refused_digest,
    verify_written,
)

SHA256_META = "x-amz-meta-sha256"
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchVersion"})
TAKEN_CODES = frozenset({"PreconditionFailed"})  # a conditional PUT found the key already written
# A whole-object checksum needs a single PUT, which S3 allows up to this size. minio-py switches to multipart
# above 5 MiB unless given a part size, and a multipart PUT carrying it is refused (`InvalidRequest`).
MAX_SINGLE_PUT = 5 * 1024**3


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    version_id: str | None
    sha256: str
    size: int
    created: bool  # False when identical bytes were already stored


class AlreadyStored(Exception):
    """A write-if-absent found the key already holding a version; nothing was written."""


def is_missing(error: S3Error) -> bool:
    return error.code in MISSING_CODES


def delete_versions(client: Minio, bucket: str, versions: Iterable[tuple[str, str | None]],
                    failure: type[Exception] = RuntimeError) -> int:
    """Delete each (key, version id) in `versions`; returns how many. Raises `failure` naming the first refusal."""
    targets = [DeleteObject(key, version_id) for key, version_id in versions]
    if not targets:
        return 0
    errors = list(client.remove_objects(bucket, targets))
    if errors:
        raise failure(f"{len(errors)} object versions in {bucket} could not be deleted, first: {errors[0]}")
    return len(targets)


def read_bytes(client: Minio, bucket: str, key: str, version_id: str | None = None) -> bytes:
    response = client.get_object(bucket, key, version_id=version_id)
    try:
        return bytes(response.read())
    finally:
        response.close()
        response.release_conn()


def read_bytes_and_etag(client: Minio, bucket: str, key: str) -> tuple[bytes, str]:
    """The current version's bytes and the ETag the server sent with them (unquoted), from one GET: the pair a
    conditional write (`If-Match`) needs, which a GET then a HEAD could mismatch."""
    response = client.get_object(bucket, key)
    try:
        return bytes(response.read()), str(response.headers.get("ETag", "")).strip('"')
    finally:
        response.close()
        response.release_conn()


def put_verified(
    client: Minio,
    bucket: str,
    key: str,
    stream: IO[bytes],
    *,
    size: int,
    sha256: str,
    content_type: str,
    verification: Verification,
    if_absent: bool = False,
) -> str | None:
    """PUT `size` bytes that hash to `sha256` and prove them stored; returns the new version id.

    With `if_absent` the PUT is conditional (`If-None-Match: *`, a `PrehashedMinio` is needed): if the key already
    has a version the server stores nothing and AlreadyStored is raised, one request where a HEAD and then a PUT
    were two, and two simultaneous uploads of the same new photo no longer both store it.

    The PUT always carries our SHA-256 as `x-amz-checksum-sha256` (a server that checks it refuses damaged bytes
    before storing anything: ChecksumRefused), as `x-amz-meta-sha256` (hex, for people and audits) and as the
    SigV4 payload hash, which `client.PrehashedMinio` then signs with instead of hashing the body a second time.
    """
    if size > MAX_SINGLE_PUT:
        raise ValueError(f"{size} bytes is more than one PUT ({MAX_SINGLE_PUT}); a whole-object checksum needs one")
    metadata: DictType = {SHA256_META: sha256, **checksum_headers(sha256), PAYLOAD_SHA256: sha256}
    try:
        if if_absent:
            if not isinstance(client, PrehashedMinio):
                raise TypeError(f"a conditional PUT needs a PrehashedMinio client, not {type(client).__name__}")
            result = client.put_object_if_absent(
                bucket, key, _exactly(stream, size), content_type=content_type, metadata=metadata
            )
        else:
            result = client.put_object(
                bucket, key, cast(BinaryIO, stream), size, content_type=content_type, metadata=metadata,
                part_size=MAX_SINGLE_PUT,  # one PUT: the checksum covers the whole object
            )
    except S3Error as error:
        if refused_digest(error):
            raise ChecksumRefused(bucket, key, sha256, str(error.code)) from error
        if if_absent and error.code in TAKEN_CODES:
            raise AlreadyStored(f"s3://{bucket}/{key} already has a version") from error
        raise
    verify_written(
        client, bucket, key, sha256=sha256, size=size, version_id=result.version_id, verification=verification,
        acknowledged_sha256=checksum_in_reply(result.http_headers),
    )
    return result.version_id


def _exactly(stream: IO[bytes], size: int) -> bytes:
    """The next `size` bytes of `stream` (an in-memory body hands over its buffer without a copy)."""
    data = stream.read(size)
    if len(data) != size:
        raise OSError(f"the body ended after {len(data)} of {size} bytes")
    return data


def store_bytes(
    client: Minio,
    bucket: str,
    key: str,
    data: bytes,
    content_type: str,
    *,
    verification: Verification = Verification.READ_BACK,
) -> StoredObject:
    """Write `data` and prove the stored copy hashes the same before anyone counts on it.

    READ_BACK by default: callers that have not asked the server (`choose_verification`) re-read what they wrote.
    """
    digest = hashlib.sha256(data).hexdigest()
    version_id = put_verified(
        client, bucket, key, io.BytesIO(data), size=len(data), sha256=digest, content_type=content_type,
        verification=verification,
    )
    return StoredObject(bucket, key, version_id, digest, len(data), created=True)
