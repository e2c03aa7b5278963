"""Fences: metre-level circle boundaries, antimeridian and poles, time windows, unplaced/untimed rows."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from indexers.fence import EARTH_RADIUS_M, Circle, Fence, FenceError, Polygon, TimeWindow, haversine_m
from indexers.metadata import MetadataTable

RecordFactory = Callable[..., tuple[pa.Table, pa.Table]]


def destination(lat: float, lon: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """Point reached from (lat, lon) along a great circle (same sphere as the fence)."""
    p1, l1, th = math.radians(lat), math.radians(lon), math.radians(bearing_deg)
    dl = distance_m / EARTH_RADIUS_M
    p2 = math.asin(math.sin(p1) * math.cos(dl) + math.cos(p1) * math.sin(dl) * math.cos(th))
    l2 = l1 + math.atan2(math.sin(th) * math.sin(dl) * math.cos(p1), math.cos(dl) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540.0) % 360.0 - 180.0


@pytest.mark.parametrize(("centre", "radius"), [((51.5007, -0.1246), 500.0), ((-33.86, 151.21), 25.0),
                                                ((10.0, 179.9995), 200.0), ((89.99, 0.0), 3_000.0)])
@pytest.mark.parametrize("bearing", [0.0, 45.0, 90.0, 180.0, 270.0])
def test_circle_boundary_to_a_metre(centre: tuple[float, float], radius: float, bearing: float) -> None:
    circle = Circle(centre[0], centre[1], radius)
    inside = destination(*centre, bearing, radius - 1.0)
    outside = destination(*centre, bearing, radius + 1.0)
    lat = np.array([inside[0], outside[0]])
    lon = np.array([inside[1], outside[1]])
    assert circle.contains(lat, lon).tolist() == [True, False]


def test_circle_across_antimeridian_and_around_pole() -> None:
    across = Circle(10.0, 179.9995, 200.0)
    lat, lon = np.array([10.0, 10.0, 10.0]), np.array([-179.9995, 179.99, -179.99])
    assert across.contains(lat, lon).tolist() == [True, False, False]
    pole = Circle(90.0, 0.0, 100_000.0)
    lat, lon = np.array([89.2, 89.2, 89.0, -89.5]), np.array([0.0, 180.0, 45.0, 0.0])
    assert pole.contains(lat, lon).tolist() == [True, True, False, False]
    assert haversine_m(np.array([89.9]), np.array([0.0]), 89.9, 180.0)[0] == pytest.approx(22_239, rel=1e-3)


def test_nan_positions_are_never_inside() -> None:
    assert not Circle(0.0, 0.0, 1e7).contains(np.array([np.nan]), np.array([0.0]))[0]
    square = Polygon((-1.0, -1.0, 1.0, 1.0), (-1.0, 1.0, 1.0, -1.0))
    assert not square.contains(np.array([np.nan]), np.array([np.nan]))[0]


def test_polygon_simple_open_or_closed_ring() -> None:
    lat = (51.50, 51.50, 51.51, 51.51)
    lon = (-0.13, -0.12, -0.12, -0.13)
    points = (np.array([51.505, 51.505, 51.515]), np.array([-0.125, -0.115, -0.125]))
    assert Polygon(lat, lon).contains(*points).tolist() == [True, False, False]
    closed = Polygon(lat + lat[:1], lon + lon[:1])
    assert closed.contains(*points).tolist() == [True, False, False]


def test_polygon_across_antimeridian() -> None:
    box = Polygon((-10.0, -10.0, 10.0, 10.0), (170.0, -170.0, -170.0, 170.0))
    lat = np.array([0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, 11.0])
    lon = np.array([179.0, -179.0, 180.0, -171.0, 0.0, 169.0, -169.0, 179.0])
    assert box.contains(lat, lon).tolist() == [True, True, True, True, False, False, False, False]


@pytest.mark.parametrize("pole", [90.0, -90.0])
def test_polygon_around_a_pole(pole: float) -> None:
    s = math.copysign(1.0, pole)
    ring = Polygon(tuple(s * 80.0 for _ in range(4)), (0.0, 90.0, 180.0, -90.0))
    lat = s * np.array([85.0, 89.9, 90.0, 75.0, 0.0])
    lon = np.array([45.0, -135.0, 0.0, 0.0, 10.0])
    assert ring.contains(lat, lon).tolist() == [True, True, True, False, False]
    assert not ring.contains(np.array([-s * 85.0]), np.array([45.0]))[0]


def test_invalid_shapes_are_refused() -> None:
    with pytest.raises(FenceError, match="at least 3"):
        Polygon((1.0, 2.0, 1.0), (1.0, 2.0, 1.0))
    with pytest.raises(FenceError, match="lat must be"):
        Circle(91.0, 0.0, 10.0)
    with pytest.raises(FenceError, match="radius_m"):
        Circle(0.0, 0.0, 0.0)


def test_time_window_is_half_open(t0: datetime) -> None:
    window = TimeWindow(t0, t0 + timedelta(hours=1))
    s = int(t0.timestamp())
    taken = np.array([s - 1, s, s + 3599, s + 3600], dtype=np.int64)
    assert window.contains(taken).tolist() == [False, True, True, False]
    with pytest.raises(FenceError, match="timezone-aware"):
        TimeWindow(t0.replace(tzinfo=None), t0 + timedelta(hours=1))
    with pytest.raises(FenceError, match="empty"):
        TimeWindow(t0, t0)


def test_unplaced_and_untimed_are_an_explicit_choice(records: RecordFactory, t0: datetime) -> None:
    det, photos = records(
        [51.5, 51.5, None, 40.0, 51.5], [-0.12, -0.12, None, 3.0, -0.12],
        taken=[t0, t0, t0, t0, None],
        position_source=["exif", "exif", "none", "device", "pin"],
        time_source=["gps", "unknown", "gps", "gps", "unknown"],
    )
    meta = MetadataTable.from_records(det, photos)
    area, window = Circle(51.5, -0.12, 100.0), TimeWindow(t0, t0 + timedelta(minutes=1))

    def keep(unplaced: bool, untimed: bool) -> list[bool]:
        fence = Fence(area=area, window=window, include_unplaced=unplaced, include_untimed=untimed)
        return fence.mask(meta).tolist()

    # rows: placed+timed inside, untimed, unplaced, placed far away, untimed (no time at all)
    assert keep(False, False) == [True, False, False, False, False]
    assert keep(True, False) == [True, False, True, False, False]
    assert keep(False, True) == [True, True, False, False, True]
    assert keep(True, True) == [True, True, True, False, True]
    with pytest.raises(TypeError):
        Fence(area=area, window=window)  # type: ignore[call-arg]


def test_event_scope_keeps_only_the_cases_events(records: RecordFactory, t0: datetime) -> None:
    det, photos = records([51.5, 51.5], [-0.12, -0.12], taken=[t0, t0])
    photos = photos.set_column(photos.schema.get_field_index("event_id"), "event_id", pa.array(["ev1", "ev2"]))
    meta = MetadataTable.from_records(det, photos)

    def keep(events: frozenset[str] | None) -> list[bool]:
        fence = Fence(area=None, window=None, include_unplaced=False, include_untimed=False, event_ids=events)
        return fence.mask(meta).tolist()

    assert keep(None) == [True, True]
    assert keep(frozenset({"ev2"})) == [False, True]
    assert keep(frozenset()) == [False, False]


def test_time_window_in_local_time_across_a_daylight_saving_switch(records: RecordFactory) -> None:
    # Paris springs forward at 02:00 local on 2025-03-30 (01:00 UTC): the local hour 02:00-03:00 never exists.
    paris = ZoneInfo("Europe/Paris")
    start = datetime(2025, 3, 30, 1, 30, tzinfo=paris)  # 00:30 UTC (CET, +01:00)
    end = datetime(2025, 3, 30, 3, 30, tzinfo=paris)  # 01:30 UTC (CEST, +02:00): the window lasts one hour
    utc = ZoneInfo("UTC")
    taken = [datetime(2025, 3, 30, 0, 29, 59, tzinfo=utc), datetime(2025, 3, 30, 0, 30, tzinfo=utc),
             datetime(2025, 3, 30, 1, 29, 59, tzinfo=utc), datetime(2025, 3, 30, 1, 30, tzinfo=utc),
             # the same instant written with an offset: a photo's EXIF offset, not UTC
             datetime(2025, 3, 30, 3, 0, tzinfo=timezone(timedelta(hours=2)))]
    det, photos = records([48.85] * 5, [2.35] * 5, taken=taken)
    meta = MetadataTable.from_records(det, photos)
    fence = Fence(area=None, window=TimeWindow(start, end), include_unplaced=False, include_untimed=False)
    assert fence.mask(meta).tolist() == [False, True, True, False, True]


@pytest.mark.parametrize(("centre", "radius"), [((51.5, -0.12), 8_000.0), ((0.0, 179.9), 50_000.0),
                                                ((-60.0, -179.99), 400_000.0), ((88.5, 30.0), 200_000.0),
                                                ((-45.0, 10.0), 12_000_000.0)])
def test_circle_bounding_box_prefilter_never_changes_the_answer(centre: tuple[float, float], radius: float) -> None:
    rng = np.random.default_rng(5)
    lat = np.concatenate([rng.uniform(-90, 90, 20_000),
                          np.clip(centre[0] + rng.normal(0, radius / 50_000, 20_000), -90, 90)])
    lon = np.concatenate([rng.uniform(-180, 180, 20_000), (centre[1] + rng.normal(0, radius / 30_000, 20_000)
                                                           + 180.0) % 360.0 - 180.0])
    # points exactly on the boundary, all round the circle
    on = [destination(*centre, b, radius) for b in np.linspace(0.0, 360.0, 73)]
    lat, lon = np.append(lat, [p[0] for p in on]), np.append(lon, [p[1] for p in on])
    plain = haversine_m(lat, lon, *centre) <= radius
    assert np.array_equal(Circle(*centre, radius).contains(lat, lon), plain)
    assert plain.sum() > 0


def test_polygon_latitude_band_prefilter_never_changes_the_answer() -> None:
    ring = Polygon(lat=(51.0, 51.2, 51.6, 51.3), lon=(-0.5, 0.3, 0.1, -0.4))
    rng = np.random.default_rng(6)
    lat = np.concatenate([rng.uniform(50.8, 51.8, 20_000), [51.0, 51.6, 51.2, np.nan]])
    lon = np.concatenate([rng.uniform(-0.7, 0.5, 20_000), [-0.5, 0.1, 0.3, 0.0]])
    every_row = np.zeros(len(lat), dtype=bool)
    for shift in (-360.0, 0.0, 360.0):
        every_row |= ring._contains_planar(lon + shift, lat)
    assert np.array_equal(ring.contains(lat, lon), every_row) and every_row.sum() > 1_000


def _unit_xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lmb = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lmb), np.cos(phi) * np.sin(lmb), np.sin(phi)])


@pytest.mark.parametrize(("centre", "radius"), [((51.5, -0.12), 8_000.0), ((0.0, 179.9999), 5.0),
                                                ((10.0, -179.9995), 200.0), ((89.9999, 0.0), 50.0),
                                                ((-90.0, 0.0), 30_000.0), ((-45.0, 10.0), 12_000_000.0),
                                                ((33.0, 44.0), 0.5)])
def test_unit_vector_test_equals_haversine_at_the_boundary(centre: tuple[float, float], radius: float) -> None:
    """Points a millimetre to a micrometre either side of the radius, all round, across +-180 and at the poles:
    the cosine test decides exactly as haversine does (borderline points are handed to haversine)."""
    lat, lon = [], []
    for bearing in np.linspace(0.0, 360.0, 91):
        for offset in (-1e-3, -1e-6, 0.0, 1e-6, 1e-3, -1.0, 1.0):
            p = destination(*centre, float(bearing), radius + offset)
            lat.append(p[0])
            lon.append(p[1])
    lat_a, lon_a = np.array(lat + [np.nan]), np.array(lon + [np.nan])
    circle = Circle(*centre, radius)
    plain = haversine_m(lat_a, lon_a, *centre) <= radius
    assert np.array_equal(circle.contains_xyz(_unit_xyz(lat_a, lon_a), lat_a, lon_a), plain)
    assert plain.sum() > 0 and (~plain).sum() > 1


def test_unit_vector_test_far_from_the_boundary_needs_no_haversine(monkeypatch: pytest.MonkeyPatch) -> None:
    import indexers.fence as fence_module

    calls: list[int] = []
    real = fence_module.haversine_m

    def counting(*args: object) -> np.ndarray:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fence_module, "haversine_m", counting)
    lat, lon = np.array([0.0, 0.0, 0.0]), np.array([179.99, -179.99, 170.0])
    assert Circle(0.0, 180.0, 5_000.0).contains_xyz(_unit_xyz(lat, lon), lat, lon).tolist() == [True, True, False]
    assert not calls
