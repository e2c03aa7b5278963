"""Builds the one `minio.Minio` client a process uses, and prepares the buckets."""

from __future__ import annotations

from datetime import datetime

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.credentials import Credentials
from minio.error import S3Error
from minio.helpers import DictType, ObjectWriteResult, genheaders
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from infra.storage.config import S3Settings
from infra.storage.integrity import PAYLOAD_SHA256


class PrehashedMinio(Minio):
    """A `Minio` client that signs a request with the payload SHA-256 its caller already took, if it gave one.

    Over plain HTTP, minio-py hashes every request body for SigV4's `x-amz-content-sha256`; for a photo that is a
    second SHA-256 of bytes whose SHA-256 we already have (it names the object). A caller that passes the header
    (`put_object(metadata={"x-amz-content-sha256": hex})`) is taken at its word, and the request is signed exactly
    as minio-py would have signed it: same header, same value. A wrong value is refused by a server that checks
    it (MinIO, AWS: `XAmzContentSHA256Mismatch`), and the body is covered anyway by `x-amz-checksum-sha256`.
    Over HTTPS minio-py sends `UNSIGNED-PAYLOAD` and an MD5 instead; that path is left as it is.

    It also sends conditional PUTs (`put_object_if_absent`, `put_object_if_unchanged`), which `put_object` cannot.
    They rest on private methods (`_build_headers`, `_put_object`): minio is pinned in pyproject.toml and
    tests/infra/storage/test_client.py fails if an upgrade changes what they rely on.
    """

    def put_object_if_absent(
        self, bucket_name: str, object_name: str, data: bytes, *, content_type: str, metadata: DictType
    ) -> ObjectWriteResult:
        """One PUT that the server carries out only if the key has no current version (`If-None-Match: *`);
        otherwise it stores nothing and answers S3Error `PreconditionFailed` (412)."""
        return self.put_object_if_unchanged(
            bucket_name, object_name, data, etag=None, content_type=content_type, metadata=metadata
        )

    def put_object_if_unchanged(
        self, bucket_name: str, object_name: str, data: bytes, *, etag: str | None, content_type: str,
        metadata: DictType,
    ) -> ObjectWriteResult:
        """One PUT that the server carries out only if the key's current version still has `etag` (`If-Match`),
        or, with `etag` None, only if the key has no current version (`If-None-Match: *`); otherwise it stores
        nothing and answers S3Error `PreconditionFailed` (412). The compare-and-swap of `infra.storage.conditional`.
        """
        headers = genheaders(metadata, None, None, None, False)
        headers["Content-Type"] = content_type
        if etag is None:
            headers["If-None-Match"] = "*"
        else:
            bare = etag.strip('"')  # minio-py hands ETags over unquoted; the header wants them quoted
            headers["If-Match"] = f'"{bare}"'
        return self._put_object(bucket_name, object_name, data, headers)

    def _build_headers(
        self,
        host: str,
        headers: DictType | None = None,
        body: bytes | None = None,
        creds: Credentials | None = None,
    ) -> tuple[DictType, datetime]:
        given = (headers or {}).get(PAYLOAD_SHA256)
        if not isinstance(given, str) or body is None or self._base_url.is_https:
            return super()._build_headers(host, headers, body, creds)
        # Without a body minio-py hashes b"" (no cost) and adds no Content-Length; both are put right here.
        built, date = super()._build_headers(host, headers, None, creds)
        built["Content-Length"] = str(len(body))
        built[PAYLOAD_SHA256] = given
        return built, date


def build_client(settings: S3Settings) -> Minio:
    # minio's default pool keeps 10 connections and discards the rest: under many concurrent uploads that means
    # reconnecting for every request. Size the pool for the API's concurrency; the rest mirrors minio's defaults
    # except for the retries.
    http = urllib3.PoolManager(
        maxsize=settings.max_connections,
        timeout=urllib3.Timeout(connect=300, read=300),
        # Retry reads, and connections that never reached the server; never resend a PUT whose answer was lost:
        # with versioning that stores a second copy. The caller retries the whole, idempotent, store instead.
        retries=urllib3.Retry(
            total=5, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504], allowed_methods=["GET", "HEAD"]
        ),
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
    )
    return PrehashedMinio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key.get_secret_value(),
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


class BucketWithoutLock(RuntimeError):
    """A bucket that must be write-once exists without object lock (which can only be enabled at creation)."""


def _ensure_locked_bucket(client: Minio, name: str) -> None:
    if not client.bucket_exists(name):
        client.make_bucket(name, object_lock=True)
    try:
        client.get_object_lock_config(name)
    except S3Error as error:
        if error.code == "ObjectLockConfigurationNotFoundError":
            raise BucketWithoutLock(
                f"bucket {name!r} exists without object lock; its objects would be deletable"
            ) from error
        raise


def ensure_buckets(client: Minio, settings: S3Settings) -> None:
    """Create missing buckets; `evidence` and `audit` get versioning and object lock, `evidence` a default retention.

    Object lock can only be enabled when a bucket is created, so an existing evidence or audit bucket without it is
    an error we refuse to paper over.
    """
    names = settings.buckets
    _ensure_locked_bucket(client, names.evidence)
    _ensure_locked_bucket(client, names.audit)
    client.set_object_lock_config(
        names.evidence,
        ObjectLockConfig(settings.evidence_retention_mode, settings.evidence_retention_days, DAYS),
    )
    for name in (names.derived, names.catalog):
        if not client.bucket_exists(name):
            client.make_bucket(name)
            client.set_bucket_versioning(name, VersioningConfig(ENABLED))
