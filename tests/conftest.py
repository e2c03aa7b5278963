"""Fixtures shared by every test package: where the real test photos live."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from minio.commonconfig import ENABLED
from minio.versioningconfig import VersioningConfig

from infra import s3server
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import S3Settings

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real photos in ../shared/data (read in place; their licences forbid copying them here)."""
    if not (SHARED_DATA / "MANIFEST.csv").is_file():
        pytest.fail(f"real test photos not found at {SHARED_DATA}; CI clones the project beside shared/")
    return SHARED_DATA


@pytest.fixture(scope="session")
def manifest(shared_data: Path) -> dict[str, dict[str, str]]:
    """MANIFEST.csv rows keyed by relative file path."""
    with (shared_data / "MANIFEST.csv").open(newline="") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="session")
def s3_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Settings]:
    """A real SeaweedFS S3 server for the whole test session, on loopback, in a temp folder."""
    data_dir = tmp_path_factory.mktemp("s3server")
    port = s3server.find_free_port_base()
    settings = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
    s3server.start(data_dir, settings, s3_port=port)
    try:
        yield settings
    finally:
        s3server.stop(data_dir)


@pytest.fixture(scope="session")
def s3_client(s3_settings: S3Settings) -> Minio:
    client = build_client(s3_settings)
    ensure_buckets(client, s3_settings)
    return client


@pytest.fixture
def versioned_bucket(s3_client: Minio) -> str:
    """A new bucket with versioning on, as the catalog and derived buckets are."""
    name = f"v-{uuid.uuid4().hex[:12]}"
    s3_client.make_bucket(name)
    s3_client.set_bucket_versioning(name, VersioningConfig(ENABLED))
    return name
