"""Fixtures for the extraction job tests: isolated buckets on the session S3 server, evidence uploads, Dask."""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from minio import Minio

from beam_jobs.pipeline.settings import ExtractSettings
from infra import dask_cluster
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from infra.storage.evidence import manifest_key, store_json, store_original

RECEIVED_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Upload:
    name: str
    manifest_key: str
    sha256: str


def isolated_settings(s3_settings: S3Settings, *, evidence: str, catalog: str) -> ExtractSettings:
    """Job settings on the session server with buckets of its own (other tests write manifests too)."""
    s3 = s3_settings.model_copy(update={"buckets": BucketNames(evidence=evidence, derived="pl-derived",
                                                              catalog=catalog)})
    return ExtractSettings.from_mapping({"s3": s3, "num_shards": 2, "extract_models": []})


def put_evidence(client: Minio, bucket: str, *, name: str, data: bytes, event_id: str = "ev-test",
                 device_position: dict[str, object] | None = None, store: bool = True) -> Upload:
    """Store `data` as an original plus its manifest, as the ingest API does (`store=False`: manifest only)."""
    sha = hashlib.sha256(data).hexdigest()
    submission_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
    key = manifest_key(event_id=event_id, submission_id=submission_id, sha256=sha)
    object_key = f"originals/{sha[:2]}/{sha[2:4]}/{sha}"
    version = None
    if store:
        stored = store_original(client, bucket, stream=io.BytesIO(data), size=len(data), sha256=sha,
                                content_type="image/jpeg")
        object_key, version = stored.key, stored.version_id
    document: dict[str, object] = {
        "event_id": event_id, "submission_id": submission_id, "sha256": sha, "size": len(data),
        "media_type": "image/jpeg", "width": 1, "height": 1, "object_key": object_key, "object_version": version,
        "received_at": RECEIVED_AT.isoformat(), "api_version": "1",
    }
    if device_position is not None:
        document["device_position"] = device_position
    store_json(client, bucket, key, document)
    return Upload(name, key, sha)


@pytest.fixture(scope="session")
def job_client(s3_client: Minio) -> Minio:
    return s3_client


@pytest.fixture(scope="session")
def make_settings(s3_settings: S3Settings, job_client: Minio) -> Callable[[str, str], ExtractSettings]:
    def make(evidence: str, catalog: str) -> ExtractSettings:
        settings = isolated_settings(s3_settings, evidence=evidence, catalog=catalog)
        ensure_buckets(build_client(settings.s3), settings.s3)
        return settings

    return make


@pytest.fixture(scope="session")
def random_bytes() -> bytes:
    return random.Random(4).randbytes(3000)


@pytest.fixture(scope="session")
def dask_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real scheduler + 2 single-threaded workers on loopback for the session."""
    data_dir: Path = tmp_path_factory.mktemp("dask")
    cluster = dask_cluster.start(data_dir, port=dask_cluster.free_port(), workers=2, nthreads=1)
    try:
        yield cluster.address
    finally:
        dask_cluster.stop(data_dir)
