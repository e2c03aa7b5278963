"""Read-modify-write of one small JSON object with no lost update: optimistic concurrency on its ETag.

    document = update_json(client, bucket, "extract/state.json", add_run)  # add_run: pure, dict | None -> dict

One GET gives the current bytes and their ETag; the pure `change` makes the new document from them; one PUT stores
it only if the object still has that ETag (`If-Match`, or `If-None-Match: *` where there was no object). A 412
means another writer got in between: re-read, apply the same `change` to what that writer left, and try again after
a jittered exponential backoff; `UpdateConflict` after `RetryPolicy.attempts` tries. A `change` that raises (what it
needs no longer holds) ends the update with its exception and nothing written.

The servers we run honour `If-Match` on PUT, and atomically: AWS S3 (since 2024-11), MinIO, and SeaweedFS
(4.48, `weed mini`, the demo's and the tests' server: of 8 simultaneous PUTs carrying one ETag exactly one is
stored, in each of 50 rounds). A server that ignored the header would turn this into last-writer-wins without a
sign, so the first update through a client asks the server (`server_honours_if_match`, as
`integrity.choose_verification` does for checksums) and refuses with `ConditionalWritesUnsupported` rather than
lose an update silently.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minio import Minio
from minio.error import S3Error
from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from infra.storage.client import PrehashedMinio
from infra.storage.integrity import (
    PAYLOAD_SHA256,
    Verification,
    checksum_headers,
    checksum_in_reply,
    verify_written,
)
from infra.storage.objects import SHA256_META, delete_versions, is_missing, read_bytes_and_etag

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
PROBE_PREFIX = "_probes/if-match-"
# 412: the ETag no longer matches (or the key appeared). 409: AWS's answer to two conditional PUTs at once.
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})

Document = dict[str, Any]
Change = Callable[[Document | None], Document]


class ConditionalWritesUnsupported(RuntimeError):
    """The server stored a PUT whose `If-Match` did not match: it cannot guard a read-modify-write."""


class UpdateConflict(RuntimeError):
    """Other writers changed the object before every one of our conditional writes; nothing of ours was stored."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 12
    base_delay_s: float = 0.02  # the first waits are a few milliseconds: the usual rival is one other commit
    max_delay_s: float = 1.0


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True)
class Snapshot:
    """An object's document and the ETag it was read with; `etag` None: there was no object."""

    document: Document | None
    etag: str | None


def encode(document: Document) -> bytes:
    return json.dumps(document, sort_keys=True, indent=2).encode()


def read_snapshot(client: Minio, bucket: str, key: str) -> Snapshot:
    try:
        data, etag = read_bytes_and_etag(client, bucket, key)
    except S3Error as error:
        if is_missing(error):
            return Snapshot(None, None)
        raise
    return Snapshot(json.loads(data), etag)


def _conditional(client: Minio) -> PrehashedMinio:
    if not isinstance(client, PrehashedMinio):
        raise TypeError(f"a conditional PUT needs a PrehashedMinio client, not {type(client).__name__}")
    return client


def put_if_unchanged(
    client: Minio, bucket: str, key: str, body: bytes, *, etag: str | None, verification: Verification
) -> bool:
    """Store `body` only if `key` still has `etag` (None: no object yet) and prove it stored; False on a conflict."""
    sha256 = hashlib.sha256(body).hexdigest()
    metadata = {SHA256_META: sha256, **checksum_headers(sha256), PAYLOAD_SHA256: sha256}
    try:
        result = _conditional(client).put_object_if_unchanged(
            bucket, key, body, etag=etag, content_type=JSON_TYPE, metadata=metadata
        )
    except S3Error as error:
        if error.code in CONFLICT_CODES:
            return False
        raise
    verify_written(client, bucket, key, sha256=sha256, size=len(body), version_id=result.version_id,
                   verification=verification, acknowledged_sha256=checksum_in_reply(result.http_headers))
    return True


def server_honours_if_match(client: Minio, bucket: str) -> bool:
    """Ask the server itself: True if it refuses a PUT whose `If-Match` names an ETag the object does not have.
    Uses a throwaway key in `bucket` (not under object lock) and deletes every version it wrote."""
    key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    body = encode({"probe": key})
    stale = hashlib.md5(body + b" (an older version)").hexdigest()  # an ETag this object never had
    try:
        client.put_object(bucket, key, io.BytesIO(body), len(body), content_type=JSON_TYPE)
        refused = not put_if_unchanged(client, bucket, key, encode({"probe": "overwritten"}), etag=stale,
                                       verification=Verification.READ_BACK)
    finally:
        _remove_probe(client, bucket, key)
    return refused


def _remove_probe(client: Minio, bucket: str, key: str) -> None:
    try:
        versions = [(item.object_name or key, item.version_id)
                    for item in client.list_objects(bucket, prefix=key, include_version=True)]
        delete_versions(client, bucket, versions)
    except (S3Error, RuntimeError) as error:  # a leftover probe of a few bytes is harmless; a failed update is not
        log.warning("could not remove the If-Match probe s3://%s/%s: %s", bucket, key, error)


# Buckets each client has seen honour If-Match: the probe costs four requests, so it runs once per client and
# bucket, not before every update (a server does not stop honouring a header between two commits).
_SEEN_HONOURING: weakref.WeakKeyDictionary[Minio, set[str]] = weakref.WeakKeyDictionary()


class _Conflict(Exception):
    """One conditional write lost to another writer (internal: retried)."""


def update_json(
    client: Minio,
    bucket: str,
    key: str,
    change: Change,
    *,
    policy: RetryPolicy = DEFAULT_RETRY,
    verification: Verification = Verification.READ_BACK,
) -> Document:
    """Apply the pure `change` to the JSON object at `key` (None when there is none) and store the result, without
    losing another writer's update (see the module docstring); returns the document stored (or already there)."""
    if bucket not in _SEEN_HONOURING.setdefault(client, set()):
        if not server_honours_if_match(client, bucket):
            raise ConditionalWritesUnsupported(
                f"the S3 server behind s3://{bucket} ignores If-Match on PUT; refusing to update {key} without it"
            )
        _SEEN_HONOURING[client].add(bucket)

    def attempt() -> Document:
        snapshot = read_snapshot(client, bucket, key)
        document = change(snapshot.document)
        if document == snapshot.document:
            return document
        if not put_if_unchanged(client, bucket, key, encode(document), etag=snapshot.etag, verification=verification):
            raise _Conflict
        return document

    retrying = Retrying(
        retry=retry_if_exception_type(_Conflict),
        stop=stop_after_attempt(policy.attempts),
        wait=wait_random_exponential(multiplier=policy.base_delay_s, max=policy.max_delay_s),
    )
    try:
        return retrying(attempt)
    except RetryError as error:
        raise UpdateConflict(
            f"s3://{bucket}/{key} was changed by another writer before each of {policy.attempts} conditional writes;"
            " nothing was stored, run again"
        ) from error
