"""Storage contract tests against the real SeaweedFS S3 server, over HTTP with the minio SDK."""

from __future__ import annotations

import hashlib
import io
import time
from datetime import timedelta

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from infra.storage.client import BucketWithoutLock, ensure_buckets
from infra.storage.config import S3Settings
from infra.storage.evidence import (
    SHA256_META,
    manifest_key,
    original_key,
    read_json,
    store_json,
    store_original,
)
from infra.storage.integrity import (
    IntegrityError,
    Verification,
    checksum_headers,
    server_checksum,
    stored_sha256,
)

pytestmark = pytest.mark.integration


class CorruptingReader(io.BytesIO):
    """Flips one byte on its way to the server: what a bad disk, NIC or proxy would do."""

    def read(self, size: int | None = -1) -> bytes:
        position = self.tell()
        chunk = bytearray(super().read(size))
        if position == 0 and chunk:
            chunk[0] ^= 0xFF
        return bytes(chunk)


def _unique_bytes(label: str) -> bytes:
    return f"{label}-{time.time_ns()}".encode() * 100


def test_put_get_stat_keep_bytes_and_metadata(s3_client: Minio, s3_settings: S3Settings) -> None:
    data = _unique_bytes("plain")
    sha = hashlib.sha256(data).hexdigest()
    stored = store_original(
        s3_client,
        s3_settings.buckets.evidence,
        stream=io.BytesIO(data),
        size=len(data),
        sha256=sha,
        content_type="image/jpeg",
    )
    assert stored.created and stored.key == original_key(sha) and stored.version_id
    stat = s3_client.stat_object(s3_settings.buckets.evidence, stored.key)
    assert stat.metadata is not None and stat.metadata[SHA256_META] == sha
    assert stat.content_type == "image/jpeg" and stat.size == len(data)
    response = s3_client.get_object(s3_settings.buckets.evidence, stored.key, offset=5, length=10)
    try:
        assert response.read() == data[5:15]
    finally:
        response.close()
        response.release_conn()


def test_same_bytes_twice_is_one_object(s3_client: Minio, s3_settings: S3Settings) -> None:
    data = _unique_bytes("dup")
    sha = hashlib.sha256(data).hexdigest()
    bucket = s3_settings.buckets.evidence
    first = store_original(s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="x/y")
    second = store_original(s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="x/y")
    assert first.created and not second.created
    assert second.version_id == first.version_id
    versions = list(s3_client.list_objects(bucket, prefix=first.key, include_version=True))
    assert len(versions) == 1


@pytest.mark.parametrize("verification", list(Verification))
def test_corrupted_write_is_caught_by_hash_verification(
    s3_client: Minio, s3_settings: S3Settings, verification: Verification
) -> None:
    data = _unique_bytes("corrupt")
    sha = hashlib.sha256(data).hexdigest()
    bucket = s3_settings.buckets.evidence
    with pytest.raises(IntegrityError) as caught:
        store_original(
            s3_client, bucket, stream=CorruptingReader(data), size=len(data), sha256=sha, content_type="image/jpeg",
            verification=verification,
        )
    assert caught.value.expected == sha and caught.value.actual != sha
    # The server checked the body against our checksum and stored nothing; a clean retry stores the one version.
    assert list(s3_client.list_objects(bucket, prefix=original_key(sha), include_version=True)) == []
    good = store_original(
        s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="image/jpeg",
        verification=verification,
    )
    assert good.created
    assert stored_sha256(s3_client, bucket, good.key, good.version_id) == sha
    assert len(list(s3_client.list_objects(bucket, prefix=good.key, include_version=True))) == 1


@pytest.mark.parametrize("recorded_checksum", [True, False], ids=["with-server-checksum", "stored-without-one"])
def test_a_damaged_existing_original_gets_a_fresh_version(
    s3_client: Minio, s3_settings: S3Settings, recorded_checksum: bool
) -> None:
    """Other bytes under a photo's key (damage, or a writer that lied): proven wrong by the recorded checksum, or by
    reading back where the server recorded none, and the photo is stored again beside them."""
    data = _unique_bytes("victim")
    sha = hashlib.sha256(data).hexdigest()
    bucket, key = s3_settings.buckets.evidence, original_key(sha)
    other = data[:-1] + b"?"
    headers = checksum_headers(hashlib.sha256(other).hexdigest()) if recorded_checksum else None
    s3_client.put_object(bucket, key, io.BytesIO(other), len(other), metadata=headers)
    stored = store_original(
        s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="image/jpeg",
        verification=Verification.SERVER_CHECKSUM,
    )
    assert stored.created
    assert stored_sha256(s3_client, bucket, key, stored.version_id) == sha
    assert len(list(s3_client.list_objects(bucket, prefix=key, include_version=True))) == 2


def test_an_intact_original_stored_without_a_checksum_is_not_stored_again(
    s3_client: Minio, s3_settings: S3Settings
) -> None:
    data = _unique_bytes("legacy")
    sha = hashlib.sha256(data).hexdigest()
    bucket, key = s3_settings.buckets.evidence, original_key(sha)
    first = s3_client.put_object(bucket, key, io.BytesIO(data), len(data))  # as before checksums were sent
    again = store_original(
        s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="image/jpeg",
        verification=Verification.SERVER_CHECKSUM,
    )
    assert not again.created and again.version_id == first.version_id


def test_object_lock_refuses_deleting_an_original(s3_client: Minio, s3_settings: S3Settings) -> None:
    data = _unique_bytes("locked")
    sha = hashlib.sha256(data).hexdigest()
    bucket = s3_settings.buckets.evidence
    stored = store_original(s3_client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha, content_type="a/b")
    retention = s3_client.get_object_retention(bucket, stored.key, version_id=stored.version_id)
    assert retention is not None and retention.mode == s3_settings.evidence_retention_mode
    with pytest.raises(S3Error) as refused:
        s3_client.remove_object(bucket, stored.key, version_id=stored.version_id)
    assert refused.value.code == "AccessDenied"
    assert stored_sha256(s3_client, bucket, stored.key, stored.version_id) == sha


def test_manifest_json_roundtrip(s3_client: Minio, s3_settings: S3Settings) -> None:
    key = manifest_key(event_id="e1", submission_id=f"s-{time.time_ns()}", sha256="a" * 64)
    stored = store_json(
        s3_client, s3_settings.buckets.evidence, key, {"who": "witness", "files": 1},
        verification=Verification.SERVER_CHECKSUM,
    )
    assert read_json(s3_client, s3_settings.buckets.evidence, key) == {"who": "witness", "files": 1}
    assert server_checksum(s3_client, stored.bucket, key, stored.version_id)[0] == stored.sha256


def test_presigned_urls_work_and_expire(s3_client: Minio, s3_settings: S3Settings) -> None:
    bucket = s3_settings.buckets.derived
    key = f"thumbs/{time.time_ns()}.jpg"
    put_url = s3_client.presigned_put_object(bucket, key, expires=timedelta(seconds=60))
    assert httpx.put(put_url, content=b"thumbnail bytes").status_code == 200
    fetched = httpx.get(s3_client.presigned_get_object(bucket, key, expires=timedelta(seconds=60)))
    assert fetched.status_code == 200 and fetched.content == b"thumbnail bytes"
    # A separate short-lived URL, so a slow machine cannot make the first fetch above race the expiry.
    short_lived = s3_client.presigned_get_object(bucket, key, expires=timedelta(seconds=1))
    time.sleep(2.5)
    assert httpx.get(short_lived).status_code == 403


def test_original_keys_come_only_from_the_hash() -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        original_key("../../etc/passwd")
    assert original_key("ab" * 32).startswith("originals/ab/ab/")


def test_write_once_buckets_are_refused_without_object_lock(s3_client: Minio, s3_settings: S3Settings) -> None:
    unlocked = f"unlocked-{time.time_ns()}"
    s3_client.make_bucket(unlocked)
    settings = s3_settings.model_copy(update={"buckets": s3_settings.buckets.model_copy(update={"audit": unlocked})})
    with pytest.raises(BucketWithoutLock, match=unlocked):
        ensure_buckets(s3_client, settings)


def test_audit_bucket_is_locked(s3_client: Minio, s3_settings: S3Settings) -> None:
    assert s3_client.get_object_lock_config(s3_settings.buckets.audit) is not None
