"""The API's S3 client signs a PUT with the SHA-256 its caller already took, and a PUT's reply can prove the write.

`PrehashedMinio` overrides a private minio-py method (`_build_headers`); the first tests pin down exactly what the
override relies on, so a minio upgrade that changes it fails here rather than silently hashing twice or signing
wrongly. The integration tests put it to the real SeaweedFS server.
"""

from __future__ import annotations

import base64
import hashlib
import io
import time
from collections.abc import Callable
from typing import Any

import minio.api
import pytest
from minio import Minio
from minio.credentials import Credentials

from infra.storage.client import PrehashedMinio
from infra.storage.config import S3Settings
from infra.storage.evidence import original_key, store_original
from infra.storage.integrity import (
    CHECKSUM_HEADER,
    PAYLOAD_SHA256,
    IntegrityError,
    Verification,
    checksum_in_reply,
    verify_written,
)
from infra.storage.objects import AlreadyStored, put_verified

BODY = b"witness photo bytes " * 5000
BODY_SHA256 = hashlib.sha256(BODY).hexdigest()
CREDS = Credentials("access", "secret")


def _count_calls(monkeypatch: pytest.MonkeyPatch, client: Minio, method: str) -> list[str]:
    """Spy on one method of the real client: the keys it was called for, the call itself still goes through."""
    keys: list[str] = []
    real = getattr(client, method)

    def counting(bucket: str, key: str, *args: Any, **kwargs: Any) -> Any:
        keys.append(key)
        return real(bucket, key, *args, **kwargs)

    monkeypatch.setattr(client, method, counting)
    return keys


def _hashes_of_the_body(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the size of every payload minio-py hashes for signing (it calls `minio.api.sha256_hash`)."""
    seen: list[int] = []
    real: Callable[[Any], str] = minio.api.sha256_hash

    def recording(data: Any) -> str:
        seen.append(len(data or b""))
        return real(data)

    monkeypatch.setattr(minio.api, "sha256_hash", recording)
    return seen


def test_a_given_payload_hash_is_signed_as_is_and_the_body_is_not_hashed_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hashed = _hashes_of_the_body(monkeypatch)
    client = PrehashedMinio("127.0.0.1:9", access_key="access", secret_key="secret", secure=False)
    headers, _ = client._build_headers("127.0.0.1:9", {PAYLOAD_SHA256: BODY_SHA256}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == BODY_SHA256
    assert headers["Content-Length"] == str(len(BODY))
    assert len(BODY) not in hashed


def test_without_a_given_hash_the_client_hashes_like_minio(monkeypatch: pytest.MonkeyPatch) -> None:
    hashed = _hashes_of_the_body(monkeypatch)
    client = PrehashedMinio("127.0.0.1:9", access_key="access", secret_key="secret", secure=False)
    headers, _ = client._build_headers("127.0.0.1:9", {}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == BODY_SHA256
    assert headers["Content-Length"] == str(len(BODY))
    assert hashed == [len(BODY)]


def test_over_https_minio_keeps_its_own_unsigned_payload_and_md5() -> None:
    client = PrehashedMinio("127.0.0.1:9", access_key="access", secret_key="secret", secure=True)
    headers, _ = client._build_headers("127.0.0.1:9", {PAYLOAD_SHA256: BODY_SHA256}, BODY, CREDS)
    assert headers[PAYLOAD_SHA256] == "UNSIGNED-PAYLOAD"
    assert headers["Content-MD5"] == base64.b64encode(hashlib.md5(BODY).digest()).decode()


def test_the_checksum_in_a_reply_is_read_as_hex_and_anything_else_is_none() -> None:
    echoed = base64.b64encode(bytes.fromhex(BODY_SHA256)).decode()
    assert checksum_in_reply({CHECKSUM_HEADER: echoed}) == BODY_SHA256
    assert checksum_in_reply({}) is None
    assert checksum_in_reply({CHECKSUM_HEADER: "not base64!"}) is None


def test_a_reply_naming_another_checksum_fails_the_write_without_asking_the_server() -> None:
    unreachable = Minio("127.0.0.1:9", access_key="access", secret_key="secret", secure=False)
    with pytest.raises(IntegrityError):
        verify_written(
            unreachable, "bucket", "key", sha256=BODY_SHA256, size=len(BODY), version_id="v1",
            verification=Verification.SERVER_CHECKSUM, acknowledged_sha256="0" * 64,
        )


@pytest.mark.integration
def test_a_verified_put_is_one_request_signed_with_our_hash(
    s3_client: Minio, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server accepts the signature made with our hash, echoes our checksum, and no HEAD follows the PUT."""
    assert isinstance(s3_client, PrehashedMinio)
    hashed = _hashes_of_the_body(monkeypatch)
    heads = _count_calls(monkeypatch, s3_client, "stat_object")
    bucket, key = s3_settings.buckets.evidence, f"client/prehashed-{time.time_ns()}"
    version = put_verified(
        s3_client, bucket, key, io.BytesIO(BODY), size=len(BODY), sha256=BODY_SHA256, content_type="image/jpeg",
        verification=Verification.SERVER_CHECKSUM,
    )
    assert len(BODY) not in hashed and heads == []
    stored = s3_client.get_object(bucket, key, version_id=version)
    try:
        assert hashlib.sha256(stored.read()).hexdigest() == BODY_SHA256
    finally:
        stored.close()
        stored.release_conn()


@pytest.mark.integration
def test_read_back_verification_still_reads_back(
    s3_client: Minio, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server not proven to check checksums gets no credit for its reply: the object is read back."""
    reads = _count_calls(monkeypatch, s3_client, "get_object")
    bucket, key = s3_settings.buckets.derived, f"client/read-back-{time.time_ns()}"
    put_verified(
        s3_client, bucket, key, io.BytesIO(BODY), size=len(BODY), sha256=BODY_SHA256, content_type="a/b",
        verification=Verification.READ_BACK,
    )
    assert reads == [key]


@pytest.mark.integration
def test_a_conditional_put_stores_nothing_where_a_version_exists(
    s3_client: Minio, s3_settings: S3Settings
) -> None:
    bucket, key = s3_settings.buckets.evidence, f"client/if-absent-{time.time_ns()}"

    def put() -> str | None:
        return put_verified(
            s3_client, bucket, key, io.BytesIO(BODY), size=len(BODY), sha256=BODY_SHA256, content_type="a/b",
            verification=Verification.SERVER_CHECKSUM, if_absent=True,
        )

    first = put()
    with pytest.raises(AlreadyStored):
        put()
    assert [o.version_id for o in s3_client.list_objects(bucket, prefix=key, include_version=True)] == [first]


@pytest.mark.integration
@pytest.mark.parametrize("client_kind", ["prehashed", "plain minio"])
def test_a_new_original_costs_one_put_and_a_repeat_one_head(
    s3_client: Minio, s3_settings: S3Settings, monkeypatch: pytest.MonkeyPatch, client_kind: str
) -> None:
    """Our client asks the PUT to be conditional (no HEAD first); any other client still looks before it writes."""
    client = s3_client if client_kind == "prehashed" else Minio(
        s3_settings.endpoint, access_key=s3_settings.access_key,
        secret_key=s3_settings.secret_key.get_secret_value(), secure=False,
    )
    data = BODY + f"{client_kind} {time.time_ns()}".encode()
    sha = hashlib.sha256(data).hexdigest()
    heads = _count_calls(monkeypatch, client, "stat_object")

    def store() -> Any:
        return store_original(client, s3_settings.buckets.evidence, stream=io.BytesIO(data), size=len(data),
                              sha256=sha, content_type="image/jpeg", verification=Verification.SERVER_CHECKSUM)

    first = store()
    assert first.created and heads == ([] if client_kind == "prehashed" else [original_key(sha)])
    heads.clear()
    again = store()
    assert not again.created and again.version_id == first.version_id and heads == [original_key(sha)]
