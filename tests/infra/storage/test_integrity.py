"""Write verification against the real SeaweedFS S3 server: the server's own SHA-256 check is really in force.

`Verification.SERVER_CHECKSUM` replaces reading every write back; it is only sound if the server refuses a body
that does not hash to the `x-amz-checksum-sha256` it came with, stores nothing in that case, and records the
checksum it checked. These tests put that to the server itself.
"""

from __future__ import annotations

import hashlib
import io
import time

import pytest
from minio import Minio
from minio.error import S3Error

from infra.storage.config import S3Settings
from infra.storage.integrity import (
    ChecksumRefused,
    IntegrityError,
    Verification,
    checksum_headers,
    choose_verification,
    refused_digest,
    server_checksum,
    server_verifies_checksums,
    verify_written,
)
from infra.storage.objects import put_verified

pytestmark = pytest.mark.integration


def _unique(label: str) -> tuple[str, bytes]:
    data = f"{label}-{time.time_ns()}".encode() * 200
    return f"integrity/{label}-{time.time_ns()}", data


def _versions(client: Minio, bucket: str, key: str) -> list[str | None]:
    return [item.version_id for item in client.list_objects(bucket, prefix=key, include_version=True)]


@pytest.mark.parametrize("bucket_role", ["evidence", "derived"])
def test_server_refuses_a_body_with_a_wrong_checksum_and_stores_nothing(
    s3_client: Minio, s3_settings: S3Settings, bucket_role: str
) -> None:
    bucket = getattr(s3_settings.buckets, bucket_role)
    key, data = _unique("wrong-checksum")
    wrong = hashlib.sha256(data + b"!").hexdigest()
    with pytest.raises(S3Error) as refused:
        s3_client.put_object(bucket, key, io.BytesIO(data), len(data), metadata=checksum_headers(wrong))
    assert refused_digest(refused.value), refused.value.code
    assert _versions(s3_client, bucket, key) == []


def test_server_records_the_checksum_it_was_sent_and_only_that(s3_client: Minio, s3_settings: S3Settings) -> None:
    bucket = s3_settings.buckets.derived
    key, data = _unique("recorded")
    sha = hashlib.sha256(data).hexdigest()
    written = s3_client.put_object(bucket, key, io.BytesIO(data), len(data), metadata=checksum_headers(sha))
    assert server_checksum(s3_client, bucket, key, written.version_id) == (sha, len(data), written.version_id)
    # Without the header the server records none: a recorded checksum is proof that the writer sent one.
    bare = s3_client.put_object(bucket, key + "-bare", io.BytesIO(data), len(data))
    assert server_checksum(s3_client, bucket, key + "-bare", bare.version_id)[0] is None


def test_the_probe_finds_seaweedfs_enforcing_checksums_and_cleans_up(s3_client: Minio, s3_settings: S3Settings) -> None:
    bucket = s3_settings.buckets.derived
    assert server_verifies_checksums(s3_client, bucket)
    assert choose_verification(s3_client, bucket) is Verification.SERVER_CHECKSUM
    assert list(s3_client.list_objects(bucket, prefix="_probes/", recursive=True, include_version=True)) == []


class FlipFirstByte(io.BytesIO):
    """Damages the body after it was hashed, on its way to the server (a bad NIC, proxy or memory)."""

    def read(self, size: int | None = -1) -> bytes:
        chunk = bytearray(super().read(size))
        if chunk:
            chunk[0] ^= 0xFF
        return bytes(chunk)


@pytest.mark.parametrize("verification", list(Verification))
def test_damaged_bytes_are_refused_by_the_server_before_anything_is_stored(
    s3_client: Minio, s3_settings: S3Settings, verification: Verification
) -> None:
    bucket = s3_settings.buckets.evidence
    key, data = _unique("damaged")
    with pytest.raises(ChecksumRefused) as refused:
        put_verified(
            s3_client, bucket, key, FlipFirstByte(data), size=len(data), sha256=hashlib.sha256(data).hexdigest(),
            content_type="image/jpeg", verification=verification,
        )
    assert isinstance(refused.value.__cause__, S3Error) and refused_digest(refused.value.__cause__)
    assert _versions(s3_client, bucket, key) == []


def test_verify_written_checks_size_checksum_and_version(s3_client: Minio, s3_settings: S3Settings) -> None:
    bucket = s3_settings.buckets.derived
    key, data = _unique("head")
    sha = hashlib.sha256(data).hexdigest()
    version = put_verified(
        s3_client, bucket, key, io.BytesIO(data), size=len(data), sha256=sha, content_type="a/b",
        verification=Verification.SERVER_CHECKSUM,
    )

    def check(sha256: str, size: int) -> None:
        verify_written(
            s3_client, bucket, key, sha256=sha256, size=size, version_id=version,
            verification=Verification.SERVER_CHECKSUM,
        )

    check(sha, len(data))
    with pytest.raises(IntegrityError):
        check("0" * 64, len(data))
    with pytest.raises(IntegrityError):
        check(sha, len(data) + 1)
    # A newer version under the key: the one we wrote is still the one checked, by its version id.
    newer = data + b"newer"
    put_verified(
        s3_client, bucket, key, io.BytesIO(newer), size=len(newer), sha256=hashlib.sha256(newer).hexdigest(),
        content_type="a/b", verification=Verification.SERVER_CHECKSUM,
    )
    check(sha, len(data))


def test_an_object_without_a_server_checksum_is_read_back(s3_client: Minio, s3_settings: S3Settings) -> None:
    bucket = s3_settings.buckets.derived
    key, data = _unique("no-checksum")
    written = s3_client.put_object(bucket, key, io.BytesIO(data), len(data))
    verify_written(
        s3_client, bucket, key, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        version_id=written.version_id, verification=Verification.SERVER_CHECKSUM,
    )
    with pytest.raises(IntegrityError) as caught:
        verify_written(
            s3_client, bucket, key, sha256=hashlib.sha256(b"other").hexdigest(), size=len(data),
            version_id=written.version_id, verification=Verification.SERVER_CHECKSUM,
        )
    assert caught.value.actual == hashlib.sha256(data).hexdigest()  # the read-back hash, not a HEAD's


@pytest.mark.parametrize("verification", list(Verification))
def test_a_write_larger_than_a_multipart_part_is_one_verified_put(
    s3_client: Minio, s3_settings: S3Settings, verification: Verification
) -> None:
    # minio-py turns bodies over 5 MiB into multipart uploads, which S3 refuses with a whole-object checksum:
    # every original above 5 MiB failed until put_verified asked for a single PUT.
    bucket = s3_settings.buckets.evidence
    key, _ = _unique("large")
    data = hashlib.sha256(key.encode()).digest() * (12 * 1024 * 1024 // 32) + b"!"
    sha = hashlib.sha256(data).hexdigest()
    version = put_verified(s3_client, bucket, key, io.BytesIO(data), size=len(data), sha256=sha,
                           content_type="application/octet-stream", verification=verification)
    assert _versions(s3_client, bucket, key) == [version]
    assert hashlib.sha256(s3_client.get_object(bucket, key, version_id=version).read()).hexdigest() == sha
