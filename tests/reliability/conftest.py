"""Fixtures for the cross-cutting reliability tests: an API with load-sized limits, and the photo workload."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import local_stack
from infra.storage.config import S3Settings
from ingest_api.settings import ApiSettings
from tests.reliability.nightly import free_port
from tests.reliability.workload import PhotoSet, bench_api_settings, create_event, synthetic_photos


@dataclass(frozen=True)
class ApiUnderTest:
    base_url: str
    settings: ApiSettings
    event_id: str


@contextmanager
def serve_api(s3: S3Settings, state_dir: Path) -> Iterator[ApiUnderTest]:
    """An API (uvicorn on a loopback thread) over `s3`, a fresh migrated SQLite and one open event."""
    settings = bench_api_settings(s3, state_dir, free_port())
    event_id = create_event(settings)
    with local_stack.api_in_background(settings) as base_url:
        yield ApiUnderTest(base_url, settings, event_id)


@pytest.fixture(scope="session")
def load_api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiUnderTest]:
    with serve_api(s3_settings, tmp_path_factory.mktemp("reliability-api")) as api:
        yield api


@pytest.fixture(scope="session")
def photo_bases() -> PhotoSet:
    """Six seeded 3-6 MB noise JPEGs; every upload adds its own comment segment, so all files are distinct."""
    return synthetic_photos(0, seed=9, bases=6, tag="bases")
