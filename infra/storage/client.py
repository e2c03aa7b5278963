"""Builds the one `minio.Minio` client a process uses, and prepares the three buckets."""

from __future__ import annotations

from minio import Minio
from minio.commonconfig import ENABLED
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from infra.storage.config import S3Settings


def build_client(settings: S3Settings) -> Minio:
    return Minio(
        settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key.get_secret_value(),
        secure=settings.secure,
        region=settings.region,
    )


def ensure_buckets(client: Minio, settings: S3Settings) -> None:
    """Create missing buckets; `evidence` gets versioning, object lock and a default retention.

    Object lock can only be enabled when a bucket is created, so an existing evidence bucket without it is an
    error we refuse to paper over: originals would be deletable.
    """
    names = settings.buckets
    if not client.bucket_exists(names.evidence):
        client.make_bucket(names.evidence, object_lock=True)
    lock = client.get_object_lock_config(names.evidence)
    if lock is None:
        raise RuntimeError(f"bucket {names.evidence!r} exists without object lock; originals would be deletable")
    client.set_object_lock_config(
        names.evidence,
        ObjectLockConfig(settings.evidence_retention_mode, settings.evidence_retention_days, DAYS),
    )
    for name in (names.derived, names.catalog):
        if not client.bucket_exists(name):
            client.make_bucket(name)
            client.set_bucket_versioning(name, VersioningConfig(ENABLED))
