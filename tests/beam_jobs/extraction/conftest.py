"""Fixtures for the extraction tests: manifest parametrisation and synthetic EXIF JPEGs."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

# Same location tests/conftest.py serves as `shared_data`; read here only to name test cases.
_MANIFEST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "MANIFEST.csv"

MakeJpeg = Callable[..., bytes]


def _exif_files() -> list[str]:
    if not _MANIFEST.is_file():
        # One case that fails through the `shared_data` fixture, instead of silently none.
        return ["<MANIFEST.csv missing>"]
    with _MANIFEST.open(newline="") as handle:
        return [row["file"] for row in csv.DictReader(handle) if row["file"].startswith("exif/")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "exif_file" in metafunc.fixturenames:
        metafunc.parametrize("exif_file", _exif_files())


def parse_ground_truth(text: str) -> dict[str, str]:
    """'make=Canon; gps=1,2; no gps' -> {'make': 'Canon', 'gps': '1,2'} (bare notes dropped)."""
    pairs = (item.split("=", 1) for item in text.split("; ") if "=" in item)
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture
def ground_truth() -> Callable[[str], dict[str, str]]:
    return parse_ground_truth


@pytest.fixture
def make_jpeg() -> MakeJpeg:
    """Build a small JPEG whose EXIF holds exactly the given IFD0 / Exif IFD / GPS IFD tags."""

    def build(
        *,
        base: Mapping[int, object] | None = None,
        exif_ifd: Mapping[int, object] | None = None,
        gps: Mapping[int, object] | None = None,
        size: tuple[int, int] = (48, 32),
    ) -> bytes:
        image = Image.new("RGB", size, (200, 40, 40))
        image.paste((20, 40, 200), (0, 0, size[0] // 2, size[1] // 2))
        exif = Image.Exif()
        exif.update(base or {})
        if exif_ifd:
            exif.get_ifd(0x8769).update(exif_ifd)
        if gps:
            exif.get_ifd(0x8825).update(gps)
        out = BytesIO()
        image.save(out, format="JPEG", exif=exif)
        return out.getvalue()

    return build
