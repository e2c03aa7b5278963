"""Seal audit segments into the object store under object lock, and read every seal back for verification.

    seal_pending(log, client, SealTarget(bucket="audit"))   # periodically, e.g. every few minutes
    load_seals(client, target) -> SealScan                       # for `witness audit verify`

A seal is `<prefix><first:012d>-<last:012d>.json` holding the segment's entries and the chain head, written with a
retention date (COMPLIANCE by default: not even an admin can remove it early) and optionally a legal hold.

Object lock only works in a bucket created with it: S3 and SeaweedFS refuse a retention on an object in the
`catalog` bucket ("InvalidRequest"), which is versioned but unlocked. So the target is the dedicated `audit`
bucket that `ensure_buckets` creates with object lock. Deleting a key without a version id still adds a delete
marker under lock, and anyone with write access can add a forged newer version, so `load_seals` reads every
version and reports markers and disagreements.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from minio import Minio
from minio.datatypes import Object
from minio.error import S3Error
from minio.retention import Retention
from urllib3.exceptions import HTTPError

from infra.storage.evidence import SHA256_META
from infra.storage.integrity import verify_stored
from ingest_api.governance.audit import Seal, SealFormatError, seal_document, seal_from_document
from ingest_api.governance.audit_store import AuditLog

log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SealTarget:
    bucket: str
    prefix: str = "audit/seals/"
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "COMPLIANCE"
    retain_days: int = 3650
    legal_hold: bool = False
    max_entries: int = 10_000  # per seal object; a larger backlog becomes several seals


@dataclass(frozen=True)
class SealScan:
    seals: tuple[Seal, ...]
    problems: tuple[str, ...] = field(default=())  # seals that are hidden, forged alongside, unlocked or unreadable


def seal_key(target: SealTarget, first_seq: int, last_seq: int) -> str:
    return f"{target.prefix}{first_seq:012d}-{last_seq:012d}.json"


def _parse_range(target: SealTarget, key: str) -> tuple[int, int] | None:
    name = key.removeprefix(target.prefix).removesuffix(".json")
    first, _, last = name.partition("-")
    return (int(first), int(last)) if first.isdigit() and last.isdigit() else None


def sealed_through(client: Minio, target: SealTarget) -> int:
    """The highest seq any seal covers (all versions, delete markers included: a hidden seal still counts)."""
    highest = 0
    for item in client.list_objects(target.bucket, prefix=target.prefix, recursive=True, include_version=True):
        if item.object_name and (span := _parse_range(target, item.object_name)):
            highest = max(highest, span[1])
    return highest


def seal_pending(log_: AuditLog, client: Minio, target: SealTarget, *, now: datetime | None = None) -> list[Seal]:
    """Seal every entry not yet sealed (in segments of at most `max_entries`); returns the seals written."""
    written: list[Seal] = []
    after = sealed_through(client, target)
    while entries := log_.entries(after_seq=after, limit=target.max_entries):
        moment = now or datetime.now(UTC)
        document = seal_document(entries, moment)
        key = seal_key(target, entries[0].seq, entries[-1].seq)
        retention = Retention(target.mode, moment.replace(microsecond=0) + timedelta(days=target.retain_days))
        body = json.dumps(document, sort_keys=True, indent=2).encode()
        digest = hashlib.sha256(body).hexdigest()
        # Lock and hold are set in the same request: there is no moment the seal exists unlocked.
        result = client.put_object(
            target.bucket,
            key,
            io.BytesIO(body),
            len(body),
            content_type="application/json",
            metadata={SHA256_META: digest},
            retention=retention,
            legal_hold=target.legal_hold,
        )
        verify_stored(client, target.bucket, key, digest, result.version_id)
        log.info("sealed audit entries %d-%d to s3://%s/%s", entries[0].seq, entries[-1].seq, target.bucket, key)
        written.append(seal_from_document(document, f"s3://{target.bucket}/{key}@{result.version_id}"))
        after = entries[-1].seq
    return written


def seal_periodically(
    log_: AuditLog, client: Minio, target: SealTarget, *, interval_s: float, stop: threading.Event
) -> None:
    """Run `seal_pending` every `interval_s` until `stop` is set (for a thread started by the API's lifespan).

    An unreachable S3 server is logged and retried at the next tick: the entries stay in the database meanwhile.
    """
    while not stop.wait(interval_s):
        try:
            seal_pending(log_, client, target)
        except (S3Error, HTTPError) as error:
            log.error("sealing the audit log failed, will retry in %.0f s: %s", interval_s, error)


def _read_version(client: Minio, bucket: str, item: Object) -> Seal:
    location = f"s3://{bucket}/{item.object_name}@{item.version_id}"
    response = client.get_object(bucket, str(item.object_name), version_id=item.version_id)
    try:
        document = json.loads(response.read())
    except json.JSONDecodeError as error:
        raise SealFormatError(f"{location}: not JSON ({error})") from error
    finally:
        response.close()
        response.release_conn()
    return seal_from_document(document, location)


def _locked(client: Minio, bucket: str, key: str, version_id: str | None) -> bool:
    try:
        retention = client.get_object_retention(bucket, key, version_id=version_id)
    except S3Error as error:
        if error.code in ("NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"):
            return False
        raise
    return retention is not None and retention.retain_until_date is not None


def load_seals(client: Minio, target: SealTarget) -> SealScan:
    """Every seal, from its oldest version (the one locked when written), with anything suspicious reported."""
    versions: dict[str, list[Object]] = defaultdict(list)
    for item in client.list_objects(target.bucket, prefix=target.prefix, recursive=True, include_version=True):
        versions[str(item.object_name)].append(item)
    seals: list[Seal] = []
    problems: list[str] = []
    for key, items in sorted(versions.items()):
        where = f"s3://{target.bucket}/{key}"
        if any(item.is_delete_marker and item.is_latest for item in items):
            problems.append(f"{where}: hidden by a delete marker (someone tried to delete it); its versions are read")
        # S3 lists a key's versions newest first; reversed, a stable sort on time keeps that order within a second.
        oldest_first = (i for i in reversed(items) if not i.is_delete_marker)
        readable = sorted(oldest_first, key=lambda i: i.last_modified or _EPOCH)
        if not readable:
            problems.append(f"{where}: no readable version left")
            continue
        try:
            parsed = [_read_version(client, target.bucket, item) for item in readable]
        except SealFormatError as error:
            problems.append(str(error))
            continue
        if any((p.entries, p.head_hash) != (parsed[0].entries, parsed[0].head_hash) for p in parsed[1:]):
            problems.append(f"{where}: {len(parsed)} versions disagree; the oldest ({parsed[0].location}) is used")
        if not _locked(client, target.bucket, key, readable[0].version_id):
            problems.append(f"{parsed[0].location}: not under object lock")
        seals.append(parsed[0])
    return SealScan(tuple(seals), tuple(problems))
