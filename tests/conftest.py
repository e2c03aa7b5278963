"""Fixtures shared by every test package: where the real test photos live."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

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
