"""Turn the catalog's Parquet records into one searchable index per kind, and keep it up to date.

    built = build_kind_index("face", detections, photos, run_ids=state.runs, withdrawn_photo_ids=gone)
    newer = update_kind_index(built, new_detections, new_photos, new_run_ids=["r7"], withdrawn_photo_ids=gone)

Tables are Arrow with `beam_jobs.records.DETECTION_SCHEMA` / `PHOTO_SCHEMA`. A detection goes into the
index of its `kind` (`face`, `vehicle`, `person`) when it has an embedding and the extraction did not mark
it out (`indexable` false or `low_quality` true: faces too small or blurred to identify anyone by).
`plate` is a text-only kind: its version holds metadata (plate text in `attributes`) and an empty
placeholder vector index, so every kind is versioned, published and swapped the same way.

Incremental: `update_kind_index` works on a clone of the given index (the served one is never touched),
removes withdrawn photos and then compacts, so a withdrawn witness's vectors leave the index file at
once rather than lingering as tombstones; it adds only detection ids not already present (the same
photo through the same model gives the same ids, see `beam_jobs.pipeline.detect.detection_id_for`).
Rows (and vectors) are kept in the layout order of `indexers.layout`, by capture time, re-sorted after each
update; ids never change.
`details` carries what a result shows but the search does not need, one row per metadata row.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from indexers.metadata import MetadataTable
from indexers.vector_index import IndexParams, IndexType, VectorIndex

VECTOR_KINDS = ("face", "vehicle", "person")
TEXT_KINDS = ("plate",)
INDEX_KINDS = VECTOR_KINDS + TEXT_KINDS
#: Dimension of the empty vector index a text-only kind carries.
PLACEHOLDER_DIM = 1

DETAILS_SCHEMA = pa.schema([
    pa.field("detection_id", pa.string()),
    pa.field("photo_id", pa.string()),
    pa.field("submission_id", pa.string()),
    pa.field("score", pa.float32()),
    pa.field("quality", pa.float32()),
    pa.field("crop_key", pa.string()),
    pa.field("thumbnail_key", pa.string()),
    pa.field("place_name", pa.string()),
    # What a result shows about its photo: size (to draw the box over a thumbnail), identity, provenance.
    pa.field("photo_width", pa.int32()),
    pa.field("photo_height", pa.int32()),
    pa.field("photo_sha256", pa.string()),
    pa.field("phash", pa.string()),
    pa.field("position_source", pa.string()),
    pa.field("time_source", pa.string()),
    pa.field("model_version", pa.string()),
    pa.field("run_id", pa.string()),
])


class CatalogIndexError(ValueError):
    """Catalog records cannot be indexed as asked (unknown kind, mixed dimensions)."""


class NothingToIndexError(CatalogIndexError):
    """A vector kind has no indexable detections yet, so there is no dimension to build an index with."""


@dataclass(frozen=True)
class KindIndex:
    """One kind's searchable state. `details` rows are aligned with `meta` rows (same detection_id order)."""

    kind: str
    index: VectorIndex
    meta: MetadataTable
    details: pa.Table
    run_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.details.column("detection_id").to_pylist() != self.meta.detection_id.tolist():
            raise CatalogIndexError(f"{self.kind}: details rows are not aligned with the metadata rows")

    def warm(self) -> KindIndex:
        """Compute the lazily cached lookups (and the certified path's codes) now, before the index is
        shared between threads: a query never pays for them, and a hot swap installs a ready index."""
        self.index.warm().positions_of(self.meta.ids)
        self.meta.warm()
        return self


def _check_kind(kind: str) -> None:
    if kind not in INDEX_KINDS:
        raise CatalogIndexError(f"unknown index kind {kind!r}; known: {', '.join(INDEX_KINDS)}")


def indexable_mask(detections: pa.Table, kind: str) -> NDArray[np.bool_]:
    """`(n,) bool`: detections of `kind` that belong in its index."""
    _check_kind(kind)
    kinds = detections.column("kind").to_pylist()
    attributes = detections.column("attributes").to_pylist()
    has_vector = ~np.asarray(pc.is_null(detections.column("embedding")).to_numpy(zero_copy_only=False), bool)
    mask = np.zeros(len(kinds), dtype=bool)
    for row, (got, raw) in enumerate(zip(kinds, attributes, strict=True)):
        if got != kind or (kind in VECTOR_KINDS and not has_vector[row]):
            continue
        attrs = json.loads(raw) if raw else {}
        mask[row] = attrs.get("indexable", True) is not False and attrs.get("low_quality", False) is not True
    return mask


def withdrawn_photo_ids(photos: pa.Table, withdrawn_submission_ids: Collection[str]) -> set[str]:
    """Photo ids of every photo that came in a withdrawn submission (`photos`: any table with photo_id and
    submission_id columns, e.g. the catalog photos or a `KindIndex.details`)."""
    gone = pc.is_in(photos.column("submission_id"), value_set=pa.array(list(withdrawn_submission_ids), pa.string()))
    return set(photos.filter(gone).column("photo_id").to_pylist())


def _select(kind: str, detections: pa.Table, withdrawn: Collection[str]) -> pa.Table:
    keep = indexable_mask(detections, kind)
    if withdrawn:
        keep &= ~np.asarray(pc.is_in(detections.column("photo_id"), value_set=pa.array(list(withdrawn), pa.string()))
                            .to_numpy(zero_copy_only=False), bool)
    return detections.filter(pa.array(keep))


def _embeddings(detections: pa.Table) -> NDArray[np.float32]:
    """`(n, d) float32` from the list<float32> embedding column; every row must have the same d."""
    column = detections.column("embedding").combine_chunks()
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if len(set(lengths.tolist())) > 1:
        raise CatalogIndexError(f"embeddings of one kind have different dimensions {sorted(set(lengths.tolist()))}")
    dim = int(lengths[0]) if len(lengths) else 0
    return column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(detections), dim)


def _details(detections: pa.Table, photos: pa.Table) -> pa.Table:
    rows = pc.index_in(detections.column("photo_id"), value_set=photos.column("photo_id"))
    photo = photos.select([
        "submission_id", "thumbnail_key", "place_name", "run_id", "width", "height", "sha256", "phash",
        "position_source", "time_source",
    ]).take(rows)
    return pa.table({
        "detection_id": detections.column("detection_id"),
        "photo_id": detections.column("photo_id"),
        "submission_id": photo.column("submission_id"),
        "score": detections.column("score").cast(pa.float32()),
        "quality": detections.column("quality").cast(pa.float32()),
        "crop_key": detections.column("crop_key"),
        "thumbnail_key": photo.column("thumbnail_key"),
        "place_name": photo.column("place_name"),
        "photo_width": photo.column("width").cast(pa.int32()),
        "photo_height": photo.column("height").cast(pa.int32()),
        "photo_sha256": photo.column("sha256"),
        "phash": photo.column("phash"),
        "position_source": photo.column("position_source"),
        "time_source": photo.column("time_source"),
        "model_version": detections.column("model_version"),
        "run_id": photo.column("run_id"),
    }, schema=DETAILS_SCHEMA)


def _vectors_for(kind: str, selected: pa.Table) -> NDArray[np.float32]:
    if kind in TEXT_KINDS:
        return np.empty((0, PLACEHOLDER_DIM), np.float32)
    return _embeddings(selected)


def build_kind_index(kind: str, detections: pa.Table, photos: pa.Table, *, run_ids: Sequence[str],
                     withdrawn_photo_ids: Collection[str] = (), params: IndexParams | None = None,
                     index_type: IndexType | None = None) -> KindIndex:
    """A fresh index of `kind` over every indexable detection not in a withdrawn photo."""
    selected = _select(kind, detections, withdrawn_photo_ids)
    vectors = _vectors_for(kind, selected)
    if kind in VECTOR_KINDS and not len(selected):
        raise NothingToIndexError(f"no indexable {kind} detections in the catalog records")
    meta = MetadataTable.from_records(selected, photos)
    order = meta.layout_order()  # rows and vectors by capture time: a fence's window is one slice
    meta, selected = meta.reordered(order), selected.take(pa.array(order))
    if kind in VECTOR_KINDS:
        vectors = vectors[order]
    ids = meta.ids if kind in VECTOR_KINDS else np.empty(0, np.int64)
    index = VectorIndex.build(kind, ids, vectors, params=params, index_type=index_type)
    return KindIndex(kind, index, meta, _details(selected, photos), tuple(run_ids)).warm()


def _clone(index: VectorIndex) -> VectorIndex:
    copy: Any = faiss.deserialize_index(faiss.serialize_index(index.index))
    return VectorIndex(copy, kind=index.kind, index_type=index.index_type, params=index.params,
                       tombstones=index.tombstones.copy())


def update_kind_index(base: KindIndex, detections: pa.Table, photos: pa.Table, *, new_run_ids: Sequence[str],
                      withdrawn_photo_ids: Collection[str] = ()) -> KindIndex:
    """`base` plus the indexable detections of new runs, minus withdrawn photos; `base` is left unchanged.

    `detections` / `photos` are the new runs' records (photos may also hold older ones the new
    detections refer to). Detection ids already in `base` are skipped.
    """
    index = _clone(base.index)
    keep_rows = ~np.isin(base.meta.photo_id, np.asarray(list(withdrawn_photo_ids), dtype=object))
    removed = index.remove(base.meta.ids[~keep_rows])
    if removed:
        index.compact()  # erase, not just hide: withdrawn vectors must not stay in the published file
    selected = _select(base.kind, detections, withdrawn_photo_ids)
    known = pc.is_in(selected.column("detection_id"), value_set=base.details.column("detection_id"))
    selected = selected.filter(pc.invert(known))
    new_meta = MetadataTable.from_records(selected, photos)
    if base.kind in VECTOR_KINDS and len(selected):
        index.add(new_meta.ids, _embeddings(selected))
    kept = pa.array(np.flatnonzero(keep_rows), pa.int64())
    meta = MetadataTable.from_arrow(pa.concat_tables([base.meta.to_arrow().take(kept), new_meta.to_arrow()]))
    details = pa.concat_tables([base.details.take(kept), _details(selected, photos)])
    # New rows were appended: sort back into layout order, moving the vectors along (IVF-PQ keeps its order
    # and is searched through the id -> position map instead).
    order = meta.layout_order()
    meta, details = meta.reordered(order), details.take(pa.array(order))
    if base.kind in VECTOR_KINDS:
        index.reorder(meta.ids)
    run_ids = base.run_ids + tuple(run for run in new_run_ids if run not in base.run_ids)
    return KindIndex(base.kind, index, meta, details, run_ids).warm()
