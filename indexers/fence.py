"""Geographic and time fences: which detections an investigator may search.

A `Fence` is an area (`Circle` or `Polygon`, or None for anywhere) plus a `TimeWindow` (or None for
any time). Photos without a trusted position or time are neither silently kept nor silently dropped:
`include_unplaced` and `include_untimed` are required arguments.

Conventions: the time window is half-open, `start <= taken_at < end` (so consecutive windows never
count a photo twice), resolved to whole UTC seconds. Circle distances are haversine on a sphere of
mean Earth radius; a point exactly at `radius_m` is inside (`Fence.mask` compares cached unit vectors
instead, and hands points within rounding of the boundary to haversine, so the answer is the same).
Polygons are tested in a plane of (unwrapped longitude, latitude), good for fences up to a few hundred
km; rings crossing the antimeridian are unwrapped, and a ring that goes once around a pole is closed
through that pole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from indexers.metadata import MetadataTable

EARTH_RADIUS_M = 6_371_008.8
#: Cosines of central angles closer than this to a circle's boundary are re-decided with haversine.
BORDER_COSINE = 1e-12


class FenceError(ValueError):
    """A fence definition is invalid."""


def _check_lat_lon(lat: float, lon: float, what: str) -> None:
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise FenceError(f"{what}: lat must be in [-90, 90] and lon in [-180, 180]; got ({lat}, {lon})")


def haversine_m(
    lat1: NDArray[np.float64] | float, lon1: NDArray[np.float64] | float, lat2: float, lon2: float
) -> NDArray[np.float64]:
    """Great-circle distance in metres from points `(n,) float64` degrees to one point (NaN in, NaN out)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - lon1)
    h = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


@dataclass(frozen=True)
class Circle:
    """Centre (degrees) and radius in metres; boundary inclusive."""

    lat: float
    lon: float
    radius_m: float

    def __post_init__(self) -> None:
        _check_lat_lon(self.lat, self.lon, "circle centre")
        if not np.isfinite(self.radius_m) or self.radius_m <= 0:
            raise FenceError(f"radius_m must be a positive number; got {self.radius_m}")

    def contains(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.bool_]:
        """`(n,) bool`: points within the circle; NaN positions are outside.

        Haversine decides, but only for points inside the circle's bounding box: a great-circle distance
        is at least the latitude difference, and within a cap of angular radius a that stays clear of the
        poles, longitudes differ by at most asin(sin a / cos lat0). The box is widened by a relative 1e-6
        (a centimetre at 10 km) so rounding can only let extra points through to the exact test.
        """
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        angle = self.radius_m / EARTH_RADIUS_M
        rows = np.flatnonzero(np.abs(lat - self.lat) <= np.degrees(angle) * (1 + 1e-6) + 1e-9)
        if abs(self.lat) + np.degrees(angle) < 89.0:  # clear of the poles: cos(lat0) > sin(angle) > 0
            half_width = np.degrees(np.arcsin(np.sin(angle) / np.cos(np.radians(self.lat))))
            # min(d, 360 - d) is the longitude difference across the antimeridian, or less (never more) for
            # values outside [-180, 180]: a cheap stand-in for a float modulo, which costs ~30 ns a value.
            dlon = np.abs(lon[rows] - self.lon)
            rows = rows[np.minimum(dlon, 360.0 - dlon) <= half_width * (1 + 1e-6) + 1e-9]
        inside = np.zeros(lat.shape, dtype=bool)
        inside[rows] = haversine_m(lat[rows], lon[rows], self.lat, self.lon) <= self.radius_m
        return inside

    def contains_xyz(self, xyz: NDArray[np.float64], lat: NDArray[np.float64], lon: NDArray[np.float64]
                     ) -> NDArray[np.bool_]:
        """`contains`, for points given also as unit vectors `xyz` `(3, n) float64` (NaN for no position).

        A point is inside iff the cosine of its central angle to the centre, x . c, is at least cos(radius / R):
        one multiply-add per coordinate instead of haversine's trigonometry, good at the poles and across the
        antimeridian. Rounding moves x . c by well under `BORDER_COSINE` (unit vectors and a 3-term sum in
        float64: a few 1e-16), so points that close to the boundary are decided by haversine, as `contains` does.
        """
        angle = self.radius_m / EARTH_RADIUS_M
        if angle >= np.pi:
            return np.asarray(np.isfinite(xyz[0]))
        lat0, lon0 = np.radians(self.lat), np.radians(self.lon)
        cx, cy, cz = np.cos(lat0) * np.cos(lon0), np.cos(lat0) * np.sin(lon0), np.sin(lat0)
        cosine = xyz[0] * cx
        cosine += xyz[1] * cy
        cosine += xyz[2] * cz
        threshold = np.cos(angle)
        inside = cosine >= threshold + BORDER_COSINE
        border = np.flatnonzero(np.abs(cosine - threshold) < BORDER_COSINE)
        if border.size:
            inside[border] = haversine_m(lat[border], lon[border], self.lat, self.lon) <= self.radius_m
        return inside


def _unwrap(lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Longitudes made continuous (successive steps in (-180, 180]) so a ring may cross +-180."""
    steps = (np.diff(lon) + 180.0) % 360.0 - 180.0
    return np.concatenate([lon[:1], lon[0] + np.cumsum(steps)])


@dataclass(frozen=True)
class Polygon:
    """A ring of vertices (degrees), open or closed, at least three distinct points."""

    lat: tuple[float, ...]
    lon: tuple[float, ...]
    _x: NDArray[np.float64] = field(init=False, repr=False, compare=False)
    _y: NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.lat) != len(self.lon):
            raise FenceError(f"polygon has {len(self.lat)} latitudes but {len(self.lon)} longitudes")
        for la, lo in zip(self.lat, self.lon, strict=True):
            _check_lat_lon(la, lo, "polygon vertex")
        lat = np.asarray(self.lat, dtype=np.float64)
        lon = np.asarray(self.lon, dtype=np.float64)
        if len(lat) > 1 and lat[0] == lat[-1] and lon[0] == lon[-1]:
            lat, lon = lat[:-1], lon[:-1]
        if len(lat) < 3:
            raise FenceError(f"polygon needs at least 3 distinct vertices; got {len(lat)}")
        x = _unwrap(np.append(lon, lon[0]))
        y = np.append(lat, lat[0])
        winding = x[-1] - x[0]
        if abs(winding) > 180.0:
            # The ring circles a pole: close it along the pole's latitude line so that the planar
            # polygon covers the cap (closing at 91, past the pole, so the pole itself is strictly
            # inside). The pole on the ring's side of the equator is the one enclosed.
            pole = 91.0 if y.mean() >= 0 else -91.0
            x = np.append(x, [x[-1], x[0], x[0]])
            y = np.append(y, [pole, pole, y[0]])
        object.__setattr__(self, "_x", x)
        object.__setattr__(self, "_y", y)

    def contains(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.bool_]:
        """`(n,) bool`: even-odd rule over the point's longitude and its +-360 images; NaN is outside."""
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        inside = np.zeros(lat.shape, dtype=bool)
        # A horizontal ray from a point outside the ring's latitude span crosses no edge: test only the band.
        rows = np.flatnonzero((lat >= self._y.min()) & (lat < self._y.max()))
        band = np.zeros(rows.shape, dtype=bool)
        for shift in (-360.0, 0.0, 360.0):
            band |= self._contains_planar(lon[rows] + shift, lat[rows])
        inside[rows] = band
        return inside

    def _contains_planar(self, px: NDArray[np.float64], py: NDArray[np.float64]) -> NDArray[np.bool_]:
        x, y = self._x, self._y
        odd = np.zeros(px.shape, dtype=bool)
        for i in range(len(x) - 1):
            x1, y1, x2, y2 = x[i], y[i], x[i + 1], y[i + 1]
            if y1 == y2:
                continue  # horizontal edges never cross a horizontal ray under the half-open rule
            crosses = (y1 > py) != (y2 > py)
            x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            odd ^= crosses & (px < x_at)
        return odd


def _epoch_s(value: datetime, what: str) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise FenceError(f"{what} must be timezone-aware (UTC); got naive {value.isoformat()}")
    return int(np.floor(value.timestamp()))


@dataclass(frozen=True)
class TimeWindow:
    """Half-open UTC window `[start, end)`, compared in whole epoch seconds."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if _epoch_s(self.start, "start") >= _epoch_s(self.end, "end"):
            raise FenceError(f"time window is empty: start {self.start} is not before end {self.end}")

    def contains(self, taken_at: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`(n,) bool` for epoch seconds `(n,) int64`."""
        start, end = _epoch_s(self.start, "start"), _epoch_s(self.end, "end")
        return np.asarray((taken_at >= start) & (taken_at < end))


@dataclass(frozen=True, kw_only=True)
class Fence:
    """Area and time window; the two `include_*` choices must be made explicitly by the caller."""

    area: Circle | Polygon | None
    window: TimeWindow | None
    include_unplaced: bool
    include_untimed: bool
    # Which events' photos may be searched at all (a case's events); None = no restriction.
    event_ids: frozenset[str] | None = None

    def mask(self, meta: MetadataTable) -> NDArray[np.bool_]:
        """`(n,) bool` over the rows of `meta`.

        Only the rows a time window can keep are tested: one slice of a time-ordered table (`indexers.layout`;
        the whole table otherwise) plus, if untimed photos are included, the trailing block of them. Within
        those rows cheap column comparisons run first, then the area's geometry.
        """
        keep = np.zeros(len(meta), dtype=bool)
        for lo, hi in self.row_ranges(meta):
            keep[lo:hi] = self._mask_rows(meta, slice(lo, hi))
        return keep

    def row_ranges(self, meta: MetadataTable) -> list[tuple[int, int]]:
        """Disjoint row ranges `[lo, hi)` of `meta` outside which no row can be inside the fence."""
        n = len(meta)
        if self.window is None:
            return [(0, n)]
        lo, hi = meta.window_rows(_epoch_s(self.window.start, "start"), _epoch_s(self.window.end, "end"))
        if not self.include_untimed:
            return [(lo, hi)]
        tail = meta.untimed_tail
        if tail is None:  # untimed rows are not in one trailing block (a table not in layout order)
            return [(0, n)]
        return [(lo, hi), (max(hi, tail), n)]

    def _mask_rows(self, meta: MetadataTable, rows: slice) -> NDArray[np.bool_]:
        if self.window is not None:
            timed = meta.timed[rows]
            taken = meta.taken_at[rows]
            start, end = _epoch_s(self.window.start, "start"), _epoch_s(self.window.end, "end")
            keep = timed & (taken >= start) & (taken < end)
            if self.include_untimed:
                keep |= ~timed
        else:
            keep = np.ones(len(meta.ids[rows]), dtype=bool)
        if self.event_ids is not None:
            keep &= meta.event_mask(self.event_ids, rows)
        if self.area is not None:
            placed = meta.position_trusted[rows]
            lat, lon = meta.lat[rows], meta.lon[rows]
            if isinstance(self.area, Circle):
                inside = self.area.contains_xyz(meta.unit_xyz[:, rows], lat, lon) & placed
            else:
                inside = np.zeros(len(placed), dtype=bool)
                candidates = np.flatnonzero(keep & placed)
                inside[candidates] = self.area.contains(lat[candidates], lon[candidates])
            keep &= (inside | ~placed) if self.include_unplaced else inside
        return keep
