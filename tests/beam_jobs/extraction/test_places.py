"""place_name: offline display names, quiet loading, and no name for the open sea."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from beam_jobs.extraction.places import place_name

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_first_load_prints_nothing_and_writes_nothing(tmp_path: Path) -> None:
    # A fresh interpreter: reverse_geocoder keeps a process-wide singleton, so only the first
    # load in a process could print, and -X dev makes an unclosed file show up on stderr.
    code = "from beam_jobs.extraction.places import place_name; print(place_name(43.467448, 11.885127))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-X", "dev", "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=False, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "Arezzo, Tuscany, IT\n", "")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [(43.467448, 11.885127, "Arezzo, Tuscany, IT"),
     (-12.94025, -38.414853, "Lauro de Freitas, Bahia, BR"),  # vehicles/br_iphone5_AZJ6991.jpg
     (-33.87, 151.21, "Sydney, New South Wales, AU"),
     (47.627167, -122.337333, "Seattle, Washington, US")],
)
def test_all_hemispheres(lat: float, lon: float, expected: str) -> None:
    assert place_name(lat, lon) == expected


def test_far_from_any_town_gives_none() -> None:
    assert place_name(0.0, -140.0) is None


def test_out_of_range_position_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="lat=91"):
        place_name(91.0, 0.0)
