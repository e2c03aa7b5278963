"""Columnar metadata aligned to the int64 ids stored in the vector indexes.

`MetadataTable.from_records(detections, photos)` joins detection records to photo records
(ARCHITECTURE.md column names) and derives a stable id per detection with `detection_int_id`, so an
index rebuilt from the same catalog assigns the same ids. Everything is plain NumPy so the fence and
the search can work on whole columns at once; `take(rows)` gives rows back as a `pyarrow.Table`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from indexers.layout import layout_order, morton_cells, time_bounds, untimed_tail_start, window_rows

#: Stored in `taken_at` where the capture time is unknown; `time_known` is the authoritative mask.
UNKNOWN_TIME = np.iinfo(np.int64).min
TRUSTED_POSITION_SOURCES = frozenset({"exif", "device", "pin"})
UNTRUSTED_TIME_SOURCE = "unknown"
_POSITIVE_INT63 = (1 << 63) - 1

DETECTION_COLUMNS = ("detection_id", "photo_id", "kind", "box", "attributes")
PHOTO_COLUMNS = ("photo_id", "lat", "lon", "taken_at_utc", "position_source", "time_source", "event_id")


class MetadataError(ValueError):
    """The records cannot be turned into a consistent metadata table."""


def detection_int_id(detection_id: str) -> int:
    """Stable positive int64 id: the first 8 bytes of sha256(detection_id), top bit cleared."""
    digest = hashlib.sha256(detection_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & _POSITIVE_INT63


def detection_int_ids(detection_ids: Iterable[str]) -> NDArray[np.int64]:
    """`(n,) int64` ids for `detection_ids`; raises `MetadataError` on duplicates or hash collisions."""
    names = list(detection_ids)
    ids = np.fromiter((detection_int_id(name) for name in names), dtype=np.int64, count=len(names))
    unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(unique) != len(ids):
        dup = unique[counts > 1][0]
        clash = sorted({names[i] for i in np.flatnonzero(ids == dup)})
        kind = "duplicate detection_id" if len(clash) == 1 else "int64 id collision between"
        raise MetadataError(f"{kind} {clash} (id {int(dup)})")
    return ids


def _require(table: pa.Table, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise MetadataError(f"{what} table lacks columns {missing}; has {table.column_names}")


@dataclass(frozen=True)
class MetadataTable:
    """One row per detection; every array has length n and row i describes `ids[i]`.

    ids `(n,) int64`; lat, lon `(n,) float64` (NaN unknown); position_trusted `(n,) bool`;
    taken_at `(n,) int64` epoch seconds UTC (`UNKNOWN_TIME` unknown); time_known, time_trusted
    `(n,) bool`; detection_id, photo_id, event_id, kind, attributes `(n,) object` (str, None for
    missing event/attributes); box `(n, 4) float32` (NaN if absent).
    """

    ids: NDArray[np.int64]
    lat: NDArray[np.float64]
    lon: NDArray[np.float64]
    position_trusted: NDArray[np.bool_]
    taken_at: NDArray[np.int64]
    time_known: NDArray[np.bool_]
    time_trusted: NDArray[np.bool_]
    detection_id: NDArray[np.object_]
    photo_id: NDArray[np.object_]
    event_id: NDArray[np.object_]
    kind: NDArray[np.object_]
    attributes: NDArray[np.object_]
    box: NDArray[np.float32]

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in (f.name for f in fields(self)):
            value = getattr(self, name)
            if len(value) != n:
                raise MetadataError(f"column {name!r} has {len(value)} rows, ids has {n}")
        if self.box.shape != (n, 4):
            raise MetadataError(f"box must be (n, 4); got {self.box.shape}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, detections: pa.Table, photos: pa.Table) -> MetadataTable:
        """Join detection records to photo records on photo_id (left join: every detection kept)."""
        _require(detections, DETECTION_COLUMNS, "detection")
        _require(photos, PHOTO_COLUMNS, "photo")
        photo_ids = photos.column("photo_id").to_pylist()
        if len(set(photo_ids)) != len(photo_ids):
            raise MetadataError("photo table has duplicate photo_id values")
        det_photo = detections.column("photo_id")
        rows = pc.index_in(det_photo, value_set=photos.column("photo_id"))
        if rows.null_count:
            orphan = det_photo.filter(pc.is_null(rows))[0].as_py()
            raise MetadataError(f"detection refers to unknown photo_id {orphan!r}")
        joined = photos.select(list(PHOTO_COLUMNS)).take(rows)
        detection_ids = detections.column("detection_id").to_pylist()
        return cls._build(detection_ids, detections, joined)

    @classmethod
    def _build(cls, detection_ids: list[str], det: pa.Table, photo: pa.Table) -> MetadataTable:
        lat = photo.column("lat").to_numpy(zero_copy_only=False).astype(np.float64)
        lon = photo.column("lon").to_numpy(zero_copy_only=False).astype(np.float64)
        position_source = photo.column("position_source").to_pylist()
        trusted_source = np.array([src in TRUSTED_POSITION_SOURCES for src in position_source], dtype=bool)
        placed = trusted_source & np.isfinite(lat) & np.isfinite(lon)
        taken_col = photo.column("taken_at_utc")
        if pa.types.is_timestamp(taken_col.type):
            # Floor to whole seconds in the unit the column carries; never through a float.
            seconds = pc.cast(taken_col, pa.timestamp("s", tz="UTC"), safe=False)
        else:
            raise MetadataError(f"taken_at_utc must be a timestamp column; got {taken_col.type}")
        time_known = ~np.asarray(pc.is_null(seconds).to_numpy(zero_copy_only=False), dtype=bool)
        taken_at = np.full(len(lat), UNKNOWN_TIME, dtype=np.int64)
        filled = pc.fill_null(seconds.cast(pa.int64()), 0).to_numpy(zero_copy_only=False)
        taken_at[time_known] = filled[time_known]
        time_source = photo.column("time_source").to_pylist()
        sourced = np.array([src not in (None, UNTRUSTED_TIME_SOURCE) for src in time_source], dtype=bool)
        time_trusted = time_known & sourced
        box = np.full((len(lat), 4), np.nan, dtype=np.float32)
        for i, b in enumerate(det.column("box").to_pylist()):
            if b is not None:
                if len(b) != 4:
                    raise MetadataError(f"box of {detection_ids[i]!r} has {len(b)} values, expected 4")
                box[i] = b
        return cls(
            ids=detection_int_ids(detection_ids),
            lat=lat,
            lon=lon,
            position_trusted=placed,
            taken_at=taken_at,
            time_known=time_known,
            time_trusted=time_trusted,
            detection_id=np.asarray(detection_ids, dtype=object),
            photo_id=np.asarray(det.column("photo_id").to_pylist(), dtype=object),
            event_id=np.asarray(photo.column("event_id").to_pylist(), dtype=object),
            kind=np.asarray(det.column("kind").to_pylist(), dtype=object),
            attributes=np.asarray(det.column("attributes").to_pylist(), dtype=object),
            box=box,
        )

    @cached_property
    def _id_order(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """argsort of ids and the sorted ids, computed once (the table is immutable)."""
        order = np.argsort(self.ids)
        return order, self.ids[order]

    @cached_property
    def _event_codes(self) -> tuple[NDArray[np.int32], dict[str | None, int]]:
        """event_id as small ints (one Python pass, once) so event fences compare integers, not strings."""
        names: dict[str | None, int] = {}
        codes = np.fromiter((names.setdefault(event, len(names)) for event in self.event_id), dtype=np.int32,
                            count=len(self))
        return codes, names

    @cached_property
    def _kind_codes(self) -> tuple[NDArray[np.int32], dict[str | None, int]]:
        names: dict[str | None, int] = {}
        codes = np.fromiter((names.setdefault(kind, len(names)) for kind in self.kind), dtype=np.int32,
                            count=len(self))
        return codes, names

    def event_mask(self, event_ids: frozenset[str], rows: slice = slice(None)) -> NDArray[np.bool_]:
        """`(m,) bool` over `rows`: those whose event_id is one of `event_ids` (rows without an event never are)."""
        codes, names = self._event_codes
        wanted = np.fromiter((names[e] for e in event_ids if e in names), dtype=np.int32)
        return np.isin(codes[rows], wanted)

    def kind_mask(self, kind: str) -> NDArray[np.bool_]:
        """`(n,) bool`, read-only: rows of detections of `kind` (computed once per kind)."""
        masks = self._kind_masks
        if kind not in masks:
            codes, names = self._kind_codes
            mask = codes == names[kind] if kind in names else np.zeros(len(self), dtype=bool)
            mask.flags.writeable = False
            masks[kind] = mask  # a racing thread computes the same array: either copy may win
        return masks[kind]

    @cached_property
    def _kind_masks(self) -> dict[str, NDArray[np.bool_]]:
        return {}

    @cached_property
    def timed(self) -> NDArray[np.bool_]:
        """`(n,) bool`: rows whose capture time is known and trusted (the only ones a time window can keep)."""
        return self.time_known & self.time_trusted

    @cached_property
    def time_bounds(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """`indexers.layout.time_bounds` of the rows, for `window_rows`."""
        return time_bounds(self.taken_at, self.timed)

    @cached_property
    def untimed_tail(self) -> int | None:
        """First row of the trailing block of rows without a trusted time; None if they are not all there."""
        return untimed_tail_start(self.time_bounds[1], self.timed)

    def window_rows(self, start_s: int, end_s: int) -> tuple[int, int]:
        """Rows `[lo, hi)` holding every row with a trusted time in `[start_s, end_s)` (see `indexers.layout`)."""
        return window_rows(*self.time_bounds, start_s, end_s)

    @cached_property
    def unit_xyz(self) -> NDArray[np.float64]:
        """`(3, n) float64` unit vectors (x, y, z) of the positions on the sphere; NaN where unplaced."""
        lat, lon = np.radians(self.lat), np.radians(self.lon)
        xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        xyz[:, ~self.position_trusted] = np.nan
        xyz.flags.writeable = False
        return xyz

    def layout_order(self) -> NDArray[np.int64]:
        """`(n,) int64` permutation of the rows into layout order (`indexers.layout`)."""
        cells = morton_cells(self.lat, self.lon, self.position_trusted)
        return layout_order(self.taken_at, self.timed, cells, self.ids)

    def reordered(self, order: NDArray[np.int64]) -> MetadataTable:
        """The same rows (ids unchanged) in the order `order` `(n,) int64`, a permutation of the rows."""
        order = np.asarray(order, dtype=np.int64)
        if len(order) != len(self) or not np.array_equal(np.sort(order), np.arange(len(self))):
            raise MetadataError(f"order must be a permutation of the {len(self)} rows")
        return MetadataTable(**{f.name: getattr(self, f.name)[order] for f in fields(self)})

    def warm(self) -> MetadataTable:
        """Compute the cached lookups now, before the table is shared between threads."""
        _ = self._id_order, self._event_codes, self._kind_codes, self.time_bounds, self.untimed_tail, self.unit_xyz
        return self

    def rows_of(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Row positions of `ids` (any shape, int64; same shape out); -1 where an id is absent or -1."""
        flat = np.asarray(ids, dtype=np.int64).ravel()
        rows = np.full(flat.shape, -1, dtype=np.int64)
        if len(self.ids):
            order, sorted_ids = self._id_order
            pos = np.minimum(np.searchsorted(sorted_ids, flat), len(sorted_ids) - 1)
            found = sorted_ids[pos] == flat
            rows[found] = order[pos[found]]
        return rows.reshape(np.shape(ids))

    def to_arrow(self) -> pa.Table:
        """All columns as a `pyarrow.Table` (box as fixed-size list<float32>[4])."""
        box = pa.FixedSizeListArray.from_arrays(pa.array(self.box.ravel(), pa.float32()), 4)
        taken = pa.array(np.where(self.time_known, self.taken_at, 0), pa.int64(), mask=~self.time_known)
        return pa.table(
            {
                "id": pa.array(self.ids, pa.int64()),
                "lat": pa.array(self.lat, pa.float64()),
                "lon": pa.array(self.lon, pa.float64()),
                "position_trusted": pa.array(self.position_trusted, pa.bool_()),
                "taken_at_utc": taken.cast(pa.timestamp("s", tz="UTC")),
                "time_trusted": pa.array(self.time_trusted, pa.bool_()),
                "detection_id": pa.array(self.detection_id.tolist(), pa.string()),
                "photo_id": pa.array(self.photo_id.tolist(), pa.string()),
                "event_id": pa.array(self.event_id.tolist(), pa.string()),
                "kind": pa.array(self.kind.tolist(), pa.string()),
                "attributes": pa.array(self.attributes.tolist(), pa.string()),
                "box": box,
            }
        )

    @classmethod
    def from_arrow(cls, table: pa.Table) -> MetadataTable:
        """Inverse of `to_arrow`; the stored ids are checked against the detection_ids they came from."""
        detection_ids = table.column("detection_id").to_pylist()
        ids = table.column("id").to_numpy().astype(np.int64)
        if not np.array_equal(ids, detection_int_ids(detection_ids)):
            raise MetadataError("stored ids do not match sha256 of detection_id")
        # Parquet has no second unit: a timestamp[s] column comes back as timestamp[ms]. Cast to seconds first.
        taken = pc.cast(table.column("taken_at_utc"), pa.timestamp("s", tz="UTC")).cast(pa.int64())
        time_known = ~np.asarray(pc.is_null(taken).to_numpy(zero_copy_only=False), dtype=bool)
        taken_at = np.where(time_known, pc.fill_null(taken, 0).to_numpy(), UNKNOWN_TIME).astype(np.int64)
        box = table.column("box").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return cls(
            ids=ids,
            lat=table.column("lat").to_numpy(zero_copy_only=False).astype(np.float64),
            lon=table.column("lon").to_numpy(zero_copy_only=False).astype(np.float64),
            position_trusted=table.column("position_trusted").to_numpy(zero_copy_only=False).astype(bool),
            taken_at=taken_at,
            time_known=time_known,
            time_trusted=table.column("time_trusted").to_numpy(zero_copy_only=False).astype(bool),
            detection_id=np.asarray(detection_ids, dtype=object),
            photo_id=np.asarray(table.column("photo_id").to_pylist(), dtype=object),
            event_id=np.asarray(table.column("event_id").to_pylist(), dtype=object),
            kind=np.asarray(table.column("kind").to_pylist(), dtype=object),
            attributes=np.asarray(table.column("attributes").to_pylist(), dtype=object),
            box=box.astype(np.float32).reshape(-1, 4),
        )

    def take(self, rows: NDArray[np.int64]) -> pa.Table:
        """Metadata rows as a `pyarrow.Table`; `rows` `(m,) int64` must be valid (no -1)."""
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row positions must be in [0, {len(self)}); got min {rows.min()} max {rows.max()}")
        return self.to_arrow().take(pa.array(rows))
