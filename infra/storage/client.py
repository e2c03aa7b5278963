"""Builds the one `minio.Minio` client a process uses, and prepares the buckets."""

from __future__ import annotations

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import ENABLED
from minio.error import S3Error
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from infra.storage.config import S3Settings


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
    return Minio(
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
