"""Time-ordered layout: row order, window slices, the untimed tail, and fences equal to a row-by-row reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from numpy.typing import NDArray

from indexers.fence import Circle, Fence, Polygon, TimeWindow, haversine_m
from indexers.layout import UNTIMED, layout_order, morton_cells, time_bounds, untimed_tail_start, window_rows
from indexers.metadata import MetadataError, MetadataTable

T0 = datetime(2025, 3, 1, tzinfo=UTC)
EPOCH0 = int(T0.timestamp())
N = 6_000


def synthetic(n: int, seed: int) -> MetadataTable:
    """Rows in random order over ~20 km and 10 days, with ties in time, unplaced, untimed and untrusted rows."""
    rng = np.random.default_rng(seed)
    none = np.full(n, None, dtype=object)
    taken = EPOCH0 + rng.integers(0, 10 * 86_400, n) // 60 * 60  # whole minutes: many equal times
    known = rng.random(n) > 0.05
    lat = np.where(rng.random(n) > 0.03, 48.85 + 0.1 * rng.random(n), np.nan)
    return MetadataTable(
        ids=rng.choice(2**62, n, replace=False).astype(np.int64), lat=lat, lon=-0.05 + 0.1 * rng.random(n) + 2.3,
        position_trusted=(rng.random(n) > 0.05) & np.isfinite(lat),
        taken_at=np.where(known, taken, np.iinfo(np.int64).min),
        time_known=known, time_trusted=known & (rng.random(n) > 0.05),
        detection_id=none, photo_id=none, event_id=np.where(rng.random(n) > 0.5, "ev1", "ev2").astype(object),
        kind=np.full(n, "face", dtype=object), attributes=none, box=np.zeros((n, 4), np.float32))


def reference_mask(fence: Fence, meta: MetadataTable) -> NDArray[np.bool_]:
    """The fence's definition row by row: haversine on every row, no slices, no unit vectors."""
    timed = meta.time_known & meta.time_trusted
    keep = np.ones(len(meta), dtype=bool)
    if fence.window is not None:
        start, end = int(fence.window.start.timestamp()), int(fence.window.end.timestamp())
        keep = (timed & (meta.taken_at >= start) & (meta.taken_at < end)) | (~timed & fence.include_untimed)
    if fence.event_ids is not None:
        keep &= np.isin(meta.event_id, list(fence.event_ids))
    if fence.area is not None:
        if isinstance(fence.area, Circle):
            inside = haversine_m(meta.lat, meta.lon, fence.area.lat, fence.area.lon) <= fence.area.radius_m
        else:
            inside = fence.area.contains(meta.lat, meta.lon)
        inside &= meta.position_trusted
        keep &= (inside | ~meta.position_trusted) if fence.include_unplaced else inside
    return keep


@pytest.fixture(scope="module")
def tables() -> tuple[MetadataTable, MetadataTable]:
    meta = synthetic(N, 3)
    return meta, meta.reordered(meta.layout_order())


def test_layout_is_a_permutation_by_time_blocks_with_an_untimed_tail(
        tables: tuple[MetadataTable, MetadataTable]) -> None:
    meta, laid = tables
    assert sorted(laid.ids.tolist()) == sorted(meta.ids.tolist())
    # each id keeps its own row: every column moved together
    back = meta.rows_of(laid.ids)
    for name in ("lat", "taken_at", "time_trusted", "position_trusted", "event_id"):
        assert np.array_equal(getattr(laid, name), getattr(meta, name)[back], equal_nan=name == "lat")
    timed = laid.timed
    tail = int(np.count_nonzero(timed))
    assert timed[:tail].all() and not timed[tail:].any(), "untimed and untrusted-time rows form the tail"
    assert laid.untimed_tail == tail
    block = 4096
    times = laid.taken_at[:tail]
    for start in range(block, tail, block):
        assert times[start - block:start].max() <= times[start:start + block].min()
    assert np.array_equal(meta.layout_order(), meta.layout_order()), "deterministic"


def test_layout_orders_places_within_a_block() -> None:
    lat = np.array([10.0, 50.0, 10.001, 50.001, np.nan])
    lon = np.array([20.0, -3.0, 20.001, -3.001, 0.0])
    placed = np.isfinite(lat)
    cells = morton_cells(lat, lon, placed)
    assert cells[4] > cells[:4].max(), "unplaced rows come after every cell"
    order = layout_order(np.zeros(5, np.int64), np.ones(5, bool), cells, np.arange(5, dtype=np.int64))
    position = np.argsort(order)
    assert abs(position[0] - position[2]) == 1 and abs(position[1] - position[3]) == 1
    assert position[4] == 4


@pytest.mark.parametrize("seed", range(5))
def test_window_rows_hold_every_row_of_the_window_in_any_order(seed: int,
                                                               tables: tuple[MetadataTable, MetadataTable]) -> None:
    rng = np.random.default_rng(seed)
    for meta in tables:
        prefix_max, suffix_min = meta.time_bounds
        for _ in range(20):
            start = EPOCH0 + int(rng.integers(-86_400, 11 * 86_400))
            end = start + int(rng.integers(1, 3 * 86_400))
            lo, hi = window_rows(prefix_max, suffix_min, start, end)
            inside = np.flatnonzero(meta.timed & (meta.taken_at >= start) & (meta.taken_at < end))
            assert ((inside >= lo) & (inside < hi)).all()
    laid = tables[1]
    lo, hi = laid.window_rows(EPOCH0 + 86_400, EPOCH0 + 2 * 86_400)
    kept = np.count_nonzero(laid.timed & (laid.taken_at >= EPOCH0 + 86_400) & (laid.taken_at < EPOCH0 + 2 * 86_400))
    assert kept <= hi - lo <= kept + 2 * 4096, "the layout narrows a window to its rows plus two edge blocks"


def test_window_edges_start_inclusive_end_exclusive(tables: tuple[MetadataTable, MetadataTable]) -> None:
    laid = tables[1]
    edge = int(np.median(laid.taken_at[laid.timed]))
    at_edge = laid.timed & (laid.taken_at == edge)
    assert at_edge.sum() > 0
    start = datetime.fromtimestamp(edge, UTC)
    from_edge = Fence(area=None, window=TimeWindow(start, start + timedelta(hours=1)),
                      include_unplaced=True, include_untimed=False).mask(laid)
    until_edge = Fence(area=None, window=TimeWindow(start - timedelta(hours=1), start),
                       include_unplaced=True, include_untimed=False).mask(laid)
    assert from_edge[at_edge].all() and not until_edge[at_edge].any()
    # a window of one second holds exactly the rows of that second
    one = Fence(area=None, window=TimeWindow(start, start + timedelta(seconds=1)), include_unplaced=True,
                include_untimed=False).mask(laid)
    assert np.array_equal(one, at_edge)


def test_untimed_rows_only_when_asked(tables: tuple[MetadataTable, MetadataTable]) -> None:
    laid = tables[1]
    window = TimeWindow(T0 + timedelta(days=2), T0 + timedelta(days=3))
    untrusted = laid.time_known & ~laid.time_trusted
    assert untrusted.any() and (~laid.time_known).any()
    with_untimed = Fence(area=None, window=window, include_unplaced=True, include_untimed=True).mask(laid)
    without = Fence(area=None, window=window, include_unplaced=True, include_untimed=False).mask(laid)
    assert with_untimed[~laid.timed].all() and not without[~laid.timed].any()
    # an untrusted time inside the window does not make a row timed
    in_window = (laid.taken_at >= int(window.start.timestamp())) & (laid.taken_at < int(window.end.timestamp()))
    assert (untrusted & in_window).any() and not without[untrusted & in_window].any()


def test_untimed_rows_outside_a_tail_fall_back_to_every_row() -> None:
    taken = np.array([5, 0, 7, 3], np.int64)
    timed = np.array([True, False, True, True])
    prefix_max, suffix_min = time_bounds(taken, timed)
    assert prefix_max.tolist() == [5, UNTIMED, UNTIMED, UNTIMED] and suffix_min.tolist() == [3, 3, 3, 3]
    assert untimed_tail_start(suffix_min, timed) is None
    assert window_rows(prefix_max, suffix_min, 4, 6) == (0, 4)


def fences(seed: int) -> list[Fence]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(12):
        start = T0 + timedelta(minutes=int(rng.integers(-600, 15_000)))
        length = timedelta(minutes=int(rng.integers(1, 5000)))
        window = None if rng.random() < 0.2 else TimeWindow(start, start + length)
        area: Circle | Polygon | None
        if rng.random() < 0.6:
            area = Circle(48.9 + 0.03 * rng.standard_normal(), 2.3 + 0.03 * rng.standard_normal(),
                          float(rng.uniform(50, 8_000)))
        elif rng.random() < 0.5:
            area = Polygon((48.86, 48.86, 48.92, 48.9), (2.26, 2.32, 2.3, 2.27))
        else:
            area = None
        out.append(Fence(area=area, window=window, include_unplaced=bool(rng.random() < 0.5),
                         include_untimed=bool(rng.random() < 0.5),
                         event_ids=frozenset({"ev1"}) if rng.random() < 0.3 else None))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_fence_mask_equals_the_row_by_row_definition_in_either_order(
        seed: int, tables: tuple[MetadataTable, MetadataTable]) -> None:
    meta, laid = tables
    back = meta.rows_of(laid.ids)
    for fence in fences(seed):
        expected = reference_mask(fence, meta)
        assert np.array_equal(fence.mask(meta), expected)
        assert np.array_equal(fence.mask(laid), expected[back])


def test_reordered_refuses_a_non_permutation(tables: tuple[MetadataTable, MetadataTable]) -> None:
    meta = tables[0]
    with pytest.raises(MetadataError, match="permutation"):
        meta.reordered(np.zeros(len(meta), np.int64))
