"""Row order of an index version: by capture time, so that a fence's time window is one contiguous slice.

A version stores its metadata rows (and, where the index type allows, its vectors) in *layout order*:

- rows with a trusted capture time first, sorted by time and cut into blocks of `LAYOUT_BLOCK_ROWS`; inside a
  block, rows are ordered by a Z-order (Morton) cell of their position, so a place fence also keeps runs of
  neighbouring rows rather than rows scattered over the block (8-bit codes of 512-d read from consecutive memory
  scan at ~0.1 us a row on one core here, rows kept at random at 20 % density at ~0.4 us);
- then the tail block of rows without a trusted time (unknown or untrusted source), ordered by cell, which a
  fence includes only when asked to (`Fence.include_untimed`), never silently.

Ids never change; only the order of rows does. Search works for any row order (`window_rows` is exact for
every order and merely loses its narrowing on an unordered table), so versions written before this layout
still load and answer the same.

    meta = meta.reordered(meta.layout_order())   # layout_order over the table's columns
    lo, hi = meta.window_rows(start_s, end_s)    # window_rows over its time_bounds: no row outside [lo, hi)
                                                 # has a trusted time in [start_s, end_s)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: Rows per time block. Small enough that a window's edges add at most two blocks of rows to test one by one,
#: large enough that a block's place-ordered runs are long (4096 rows of 512-byte codes = 2 MB).
LAYOUT_BLOCK_ROWS = 4096
#: Stands for "no trusted time" in the time bounds, so untimed rows sort after every window.
UNTIMED = np.iinfo(np.int64).max
_CELL_BITS = 20  # per axis: ~19 m of latitude, ~38 m of longitude at the equator
_UNPLACED_CELL = np.uint64((1 << 2 * _CELL_BITS) - 1) + np.uint64(1)  # after every real cell


def _spread_bits(v: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Insert a zero bit after each of the low 20 bits (bit i moves to bit 2i)."""
    v = v & np.uint64(0xFFFFF)
    for shift, mask in ((16, 0x0000_00FF_0000_FFFF), (8, 0x00FF_00FF_00FF_00FF),
                        (4, 0x0F0F_0F0F_0F0F_0F0F), (2, 0x3333_3333_3333_3333), (1, 0x5555_5555_5555_5555)):
        v = (v | (v << np.uint64(shift))) & np.uint64(mask)
    return v


def morton_cells(lat: NDArray[np.float64], lon: NDArray[np.float64], placed: NDArray[np.bool_]) -> NDArray[np.uint64]:
    """`(n,) uint64` Z-order cell of each position on a 2^20 x 2^20 lat/lon grid; unplaced rows after all cells."""
    scale = float((1 << _CELL_BITS) - 1)
    placed = placed & np.isfinite(lat) & np.isfinite(lon)
    safe_lat = np.where(placed, lat, 0.0)
    safe_lon = np.where(placed, lon, 0.0)
    y = np.clip(np.floor((safe_lat + 90.0) / 180.0 * scale), 0, scale).astype(np.uint64)
    x = np.clip(np.floor((safe_lon + 180.0) / 360.0 * scale), 0, scale).astype(np.uint64)
    cells = _spread_bits(x) | (_spread_bits(y) << np.uint64(1))
    return np.where(placed, cells, _UNPLACED_CELL)


def layout_order(taken_at: NDArray[np.int64], timed: NDArray[np.bool_], cells: NDArray[np.uint64],
                 ids: NDArray[np.int64], *, block_rows: int | None = None) -> NDArray[np.int64]:
    """`(n,) int64` permutation putting rows in layout order (module docstring); deterministic (ties by id).

    taken_at `(n,) int64` epoch seconds; timed `(n,) bool` rows whose time is known and trusted; cells `(n,)
    uint64` from `morton_cells`; ids `(n,) int64` the rows' stable ids; block_rows: `LAYOUT_BLOCK_ROWS` if None.
    """
    block_rows = LAYOUT_BLOCK_ROWS if block_rows is None else block_rows
    if block_rows < 1:
        raise ValueError(f"block_rows must be >= 1; got {block_rows}")
    timed_rows = np.flatnonzero(timed)
    by_time = timed_rows[np.lexsort((ids[timed_rows], taken_at[timed_rows]))]
    block = np.arange(len(by_time)) // block_rows
    # lexsort is stable and its last key is the primary one: block, then cell, then the time order above.
    by_time = by_time[np.lexsort((cells[by_time], block))]
    untimed_rows = np.flatnonzero(~timed)
    untimed_rows = untimed_rows[np.lexsort((ids[untimed_rows], cells[untimed_rows]))]
    return np.concatenate([by_time, untimed_rows]).astype(np.int64)


def time_bounds(taken_at: NDArray[np.int64], timed: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(prefix max, suffix min) `(n,) int64` of the rows' times, `UNTIMED` for rows without a trusted time.

    Both are non-decreasing whatever the row order, which is what lets `window_rows` binary-search them.
    """
    times = np.where(timed, taken_at, UNTIMED)
    if not len(times):
        return times, times
    return np.maximum.accumulate(times), np.minimum.accumulate(times[::-1])[::-1].copy()


def window_rows(prefix_max: NDArray[np.int64], suffix_min: NDArray[np.int64], start_s: int, end_s: int
                ) -> tuple[int, int]:
    """Rows `[lo, hi)` outside of which no row has a trusted time in `[start_s, end_s)`.

    Every row before lo has a time < start_s (the prefix max is below it); every row from hi on has a time
    >= end_s or none (the suffix min is at least end_s). Exact for any order; tight for the layout order.
    """
    lo = int(np.searchsorted(prefix_max, start_s, side="left"))
    hi = int(np.searchsorted(suffix_min, end_s, side="left"))
    return lo, max(lo, hi)


def untimed_tail_start(suffix_min: NDArray[np.int64], timed: NDArray[np.bool_]) -> int | None:
    """First row of the block of rows without a trusted time at the end, or None if such rows lie elsewhere."""
    start = int(np.searchsorted(suffix_min, UNTIMED, side="left"))
    return start if int(np.count_nonzero(~timed)) == len(timed) - start else None
