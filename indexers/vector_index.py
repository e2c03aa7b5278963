"""One FAISS index per embedding kind, with stable int64 ids, incremental add and remove.

Index type by size (`choose_index_type`, thresholds from `bench/search.py` on 2 cores, dim 128):
exact `IndexFlatIP` below `IndexParams.flat_max` = 100k vectors (about 7 ms a query there, no
build cost), `IndexHNSWFlat` (inner product, M=32, efSearch 128: recall@10 1.0 at 100k, 0.35 ms)
above, and IVF-PQ re-ranked by `IndexRefineFlat` from `ivfpq_min` = 5M, where HNSW builds
(about 150 us a vector on 2 cores) take longer than a rebuild window allows.
Every index is wrapped in `IndexIDMap2`, which stores our ids next to the vectors (one file) and
can `reconstruct` a vector by id, used by exact search over small fenced subsets.

Removal (withdrawn photos): Flat removes for real. HNSW and IndexRefine cannot remove in FAISS, and
the alternatives that can (IVF-Flat) lose recall or memory; so they keep a tombstone set that
search filters out with an `IDSelectorBitmap`, and `compact()` rebuilds from the surviving vectors
(exact copies, also for IVF-PQ, whose refine stage keeps full vectors) once tombstones exceed
`max_tombstone_fraction`. A withdrawn id is therefore never returned, before or after compaction.

Searches run on the wrapped index with a selector over its internal positions (a bitmap is O(1)
per test, unlike `IDSelectorBatch` translated through the id map) and translate labels back. Three paths
(`SearchPath`): APPROXIMATE (the HNSW / IVF index), EXACT (scan of the flat float32 storage) and CERTIFIED
(`indexers.certified`: scan of 8-bit codes, exact re-rank, proven equal to EXACT). The codes are derived
data: built on first use or by `warm()` (about 2 s per million 512-d vectors), kept in step by `add`,
rebuilt after `remove` on Flat and after `compact` or `reorder`, never written to the version files.

Position order: `reorder(ids)` moves the vectors (FAISS `permute_entries`, the HNSW graph included) so that a
version stores them in its metadata's layout order (`indexers.layout`); `aligned_with(meta.ids)` then lets a
fenced search use metadata rows as positions. IVF-PQ is not reordered (its inverted lists hold positions) and
is searched through `positions_of` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

from indexers.certified import CertifiedStats, CompressedCodes, certified_search

# faiss 1.15 ships a partial `__init__.pyi`: it lacks SearchParametersHNSW, the keyword constructors
# that faiss adds at import, and `referenced_objects`. Those runtime-only parts go through this alias.
_faiss: Any = faiss


#: EXACT searches of at most this many allowed vectors score just those rows (10k scattered rows of 512-d: ~4 ms)
#: instead of a FAISS scan that tests the selector at every stored position (~5 ms for nothing at 1M).
GATHER_EXACT_MAX = 32_768


class IndexType(StrEnum):
    FLAT = "flat"
    HNSW = "hnsw"
    IVFPQ_REFINE = "ivfpq_refine"


class SearchPath(StrEnum):
    APPROXIMATE = "approximate"  # the HNSW / IVF-PQ index (Flat: the same exact scan)
    EXACT = "exact"  # scan of the float32 storage
    CERTIFIED = "certified"  # 8-bit code scan + exact re-rank, certified equal to EXACT


class VectorError(ValueError):
    """Vectors or ids handed to an index are malformed."""


@dataclass(frozen=True)
class IndexParams:
    """Build and search defaults; see module docstring and docs/BENCHMARKS.md for where they come from."""

    flat_max: int = 100_000
    ivfpq_min: int = 5_000_000
    hnsw_m: int = 32
    hnsw_ef_construction: int = 100
    hnsw_ef_search: int = 128
    ivf_nlist: int | None = None  # None: about 4 * sqrt(n)
    pq_m: int | None = None  # None: dim // 4 sub-quantizers of 8 bits
    ivf_nprobe: int = 32
    refine_k_factor: float = 8.0
    max_tombstone_fraction: float = 0.1


def choose_index_type(n: int, params: IndexParams) -> IndexType:
    if n < params.flat_max:
        return IndexType.FLAT
    return IndexType.HNSW if n < params.ivfpq_min else IndexType.IVFPQ_REFINE


def check_vectors(vectors: Any, dim: int | None = None, what: str = "vectors") -> NDArray[np.float32]:
    """`(n, d) float32`, finite, L2-normalised (to 1e-3), else `VectorError` naming the problem."""
    if not isinstance(vectors, np.ndarray) or vectors.ndim != 2:
        raise VectorError(f"{what} must be a 2-D numpy array (n, d); got {type(vectors).__name__} "
                          f"with shape {getattr(vectors, 'shape', None)}")
    if vectors.dtype != np.float32:
        raise VectorError(f"{what} must be float32; got {vectors.dtype}")
    if dim is not None and vectors.shape[1] != dim:
        raise VectorError(f"{what} have dimension {vectors.shape[1]}; index dimension is {dim}")
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise VectorError(f"{what} row {bad} contains NaN or inf")
    norms = np.linalg.norm(vectors, axis=1)
    off = np.flatnonzero(np.abs(norms - 1.0) > 1e-3)
    if off.size:
        raise VectorError(f"{what} must be L2-normalised; row {int(off[0])} has norm {norms[off[0]]:.4f}")
    return np.ascontiguousarray(vectors)


def check_ids(ids: Any, n: int) -> NDArray[np.int64]:
    """`(n,) int64`, unique, non-negative, else `VectorError`."""
    if not isinstance(ids, np.ndarray) or ids.dtype != np.int64 or ids.shape != (n,):
        raise VectorError(f"ids must be an int64 array of shape ({n},); got "
                          f"{getattr(ids, 'dtype', type(ids).__name__)} {getattr(ids, 'shape', None)}")
    if n and (ids.min() < 0 or len(np.unique(ids)) != n):
        raise VectorError("ids must be unique and non-negative")
    return np.ascontiguousarray(ids)


def exact_top_k(vectors: NDArray[np.float32], positions: NDArray[np.int64], queries: NDArray[np.float32], k: int
                ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Exact top-k among `vectors[positions]` (`(ntotal, d) float32`, `(m,) int64`) for `queries` `(nq, d)`:
    scores `(nq, k) float32` (-inf padding), positions `(nq, k) int64` (-1), ties by position."""
    nq, m = len(queries), len(positions)
    scores = np.full((nq, k), -np.inf, np.float32)
    found = np.full((nq, k), -1, np.int64)
    if not m:
        return scores, found
    positions = np.ascontiguousarray(positions, dtype=np.int64)
    queries, vectors = np.ascontiguousarray(queries, np.float32), np.ascontiguousarray(vectors, np.float32)
    every = np.empty((nq, m), np.float32)
    for row in range(nq):
        # Reads only the m rows, in place: 2-3x faster than gathering them for a BLAS product (bench/search.py).
        _faiss.fvec_inner_products_by_idx(faiss.swig_ptr(every[row]), faiss.swig_ptr(queries[row]),
                                          faiss.swig_ptr(vectors), faiss.swig_ptr(positions), vectors.shape[1], 1, m)
    take = min(k, m)
    top = np.argpartition(-every, take - 1, axis=1)[:, :take] if take < m else np.tile(np.arange(m), (nq, 1))
    top_scores = np.take_along_axis(every, top, axis=1)
    order = np.lexsort((positions[top], -top_scores), axis=1)
    scores[:, :take] = np.take_along_axis(top_scores, order, axis=1)
    found[:, :take] = positions[np.take_along_axis(top, order, axis=1)]
    return scores, found


def _new_faiss_index(index_type: IndexType, dim: int, n: int, params: IndexParams) -> faiss.Index:
    if index_type is IndexType.FLAT:
        return faiss.IndexFlatIP(dim)
    if index_type is IndexType.HNSW:
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.hnsw_ef_construction
        return hnsw
    nlist = params.ivf_nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
    pq_m = params.pq_m or max(1, dim // 4)
    if dim % pq_m:
        raise VectorError(f"pq_m={pq_m} must divide dim={dim}")
    quantizer = faiss.IndexFlatIP(dim)
    ivfpq = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, 8, faiss.METRIC_INNER_PRODUCT)
    refine: Any = faiss.IndexRefineFlat(ivfpq)
    refine.k_factor = params.refine_k_factor
    refine.referenced_objects = [quantizer, ivfpq]  # keep the Python proxies alive with the owner
    return refine


class VectorIndex:
    """Embeddings of one kind (e.g. "face") keyed by int64 ids; inner-product (cosine) search."""

    def __init__(self, index: faiss.IndexIDMap2, *, kind: str, index_type: IndexType,
                 params: IndexParams, tombstones: NDArray[np.int64] | None = None) -> None:
        self.index = index
        self.kind = kind
        self.index_type = IndexType(index_type)
        self.params = params
        self.tombstones = np.unique(tombstones if tombstones is not None else np.empty(0, np.int64))
        self._labels: NDArray[np.int64] | None = None
        # argsort of the labels and the sorted labels, for id -> position lookups; rebuilt with _labels
        self._sorted: tuple[NDArray[np.int64], NDArray[np.int64]] = (np.empty(0, np.int64),) * 2
        self._codes: CompressedCodes | None = None
        # (ids array, its positions): `positions_of` for an immutable metadata id column, looked up once
        self._known_ids: tuple[NDArray[np.int64], NDArray[np.int64]] | None = None
        self._aligned: tuple[NDArray[np.int64], bool] | None = None  # (positions_of answer, is it 0..n-1)

    @classmethod
    def build(cls, kind: str, ids: NDArray[np.int64], vectors: NDArray[np.float32], *,
              index_type: IndexType | None = None, params: IndexParams | None = None) -> VectorIndex:
        """Index `vectors` `(n, d) float32` under `ids` `(n,) int64`; type by size unless given."""
        params = params or IndexParams()
        vectors = check_vectors(vectors)
        ids = check_ids(ids, len(vectors))
        index_type = index_type or choose_index_type(len(vectors), params)
        inner = _new_faiss_index(index_type, vectors.shape[1], len(vectors), params)
        if not inner.is_trained:
            inner.train(vectors)
        wrapped: Any = faiss.IndexIDMap2(inner)
        wrapped.referenced_objects = [inner]
        wrapped.add_with_ids(vectors, ids)
        return cls(wrapped, kind=kind, index_type=index_type, params=params)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        """Live (searchable) vectors."""
        return int(self.index.ntotal) - len(self.tombstones)

    def warm(self) -> VectorIndex:
        """Compute the lazily cached lookups and codes now, before the index is shared between threads."""
        self.labels()
        self.codes()
        return self

    def codes(self) -> CompressedCodes:
        """8-bit codes of every stored vector, for the CERTIFIED path (built on first use)."""
        if self._codes is None:
            self._codes = CompressedCodes.build(self.flat_vectors())
        return self._codes

    def flat_vectors(self) -> NDArray[np.float32]:
        """`(ntotal, d) float32` read-only view of the stored vectors; valid until the index next changes."""
        storage: Any = self._flat_storage()
        if not storage.ntotal:
            return np.empty((0, self.dim), np.float32)
        view = faiss.rev_swig_ptr(storage.get_xb(), int(storage.ntotal) * self.dim).reshape(-1, self.dim)
        view.flags.writeable = False
        return view

    def positions_of(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """`(m,) int64` internal position of each id, -1 if absent (tombstoned ids keep theirs). The answer
        for the last array passed is kept while the index is unchanged: pass an immutable column (e.g.
        `MetadataTable.ids`) to look it up once."""
        if self._known_ids is not None and self._known_ids[0] is ids:
            return self._known_ids[1]
        positions, found = self._lookup(ids)
        answer = np.where(found, positions, -1)
        self._known_ids = (ids, answer)
        return answer

    def aligned_with(self, ids: NDArray[np.int64]) -> bool:
        """Whether position i holds `ids[i]` for every position (metadata rows are then positions; cached like
        `positions_of`)."""
        positions = self.positions_of(ids)
        if self._aligned is None or self._aligned[0] is not positions:
            same = len(positions) == int(self.index.ntotal) and bool(
                np.array_equal(positions, np.arange(len(positions))))
            self._aligned = (positions, same)
        return self._aligned[1]

    def reorder(self, ids: NDArray[np.int64]) -> bool:
        """Move the vectors so that position i holds `ids[i]` (`ids` `(ntotal,) int64`: every stored id once,
        e.g. a metadata table's ids in layout order). Tombstones are compacted first. Returns False, leaving
        the order as it was, for IVF-PQ, whose inverted lists would all need rewriting (searches stay correct
        through `positions_of`)."""
        self.compact()
        ids = np.asarray(ids, dtype=np.int64)
        positions, found = self._lookup(ids)
        if len(ids) != int(self.index.ntotal) or not found.all() or len(np.unique(positions)) != len(ids):
            raise VectorError(f"reorder needs each of the {int(self.index.ntotal)} stored ids exactly once")
        if np.array_equal(positions, np.arange(len(ids))):
            return True
        if self.index_type is IndexType.IVFPQ_REFINE:
            return False
        inner: Any = faiss.downcast_index(self.index.index)
        perm = np.ascontiguousarray(positions)
        inner.permute_entries(perm)  # new position i <- old position perm[i] (graph included)
        faiss.copy_array_to_vector(np.ascontiguousarray(self.labels()[perm]), self.index.id_map)
        self.index.construct_rev_map()
        self._changed(positions_moved=True)
        return True

    def tombstone_positions(self) -> NDArray[np.int64]:
        """`(t,) int64` internal positions of the tombstoned (removed, not yet compacted) ids."""
        return self._positions(self.tombstones)

    def _changed(self, *, positions_moved: bool) -> None:
        self._labels, self._known_ids, self._aligned = None, None, None
        if positions_moved:
            self._codes = None

    def labels(self) -> NDArray[np.int64]:
        """`(ntotal,) int64` id at each internal position (tombstoned ids included)."""
        if self._labels is None:
            self._labels = faiss.vector_to_array(self.index.id_map).astype(np.int64)
            order = np.argsort(self._labels)
            self._sorted = (order, self._labels[order])
        return self._labels

    def _lookup(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Positions `(m,) int64` and found mask `(m,) bool` of `ids` in the id map (tombstoned or not)."""
        labels = self.labels()
        order, sorted_labels = self._sorted
        ids = np.asarray(ids, dtype=np.int64).ravel()
        if not len(labels):
            return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
        at = np.minimum(np.searchsorted(sorted_labels, ids), len(labels) - 1)
        return order[at], sorted_labels[at] == ids

    def contains(self, ids: NDArray[np.int64]) -> NDArray[np.bool_]:
        """`(m,) bool`: which ids are live in the index."""
        found = self._lookup(ids)[1]
        if len(self.tombstones):
            found &= ~np.isin(ids, self.tombstones)
        return found

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        vectors = check_vectors(vectors, self.dim)
        ids = check_ids(ids, len(vectors))
        if np.isin(ids, self.tombstones).any():
            self.compact()  # a re-added id must not also exist as a dead copy
        present = ids[self._lookup(ids)[1]]
        if present.size:
            raise VectorError(f"{present.size} ids already in the index, e.g. {int(present[0])}")
        self.index.add_with_ids(vectors, ids)
        if self._codes is not None:
            self._codes.add(vectors)  # appended at the same positions as in the flat storage
        self._changed(positions_moved=False)

    def remove(self, ids: NDArray[np.int64]) -> int:
        """Remove ids (unknown ids are ignored); returns how many live vectors were removed."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        live = ids[self.contains(ids)]
        if not live.size:
            return 0
        if self.index_type is IndexType.FLAT:
            self.index.remove_ids(faiss.IDSelectorBatch(live))
            self._changed(positions_moved=True)
        else:
            self.tombstones = np.union1d(self.tombstones, live)
            if len(self.tombstones) > self.params.max_tombstone_fraction * self.index.ntotal:
                self.compact()
        return int(live.size)

    def reconstruct(self, ids: NDArray[np.int64]) -> NDArray[np.float32]:
        """`(m, d) float32` stored vectors of live `ids` `(m,) int64` (exact for every index type)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if not self.contains(ids).all():
            raise KeyError(f"id {int(ids[~self.contains(ids)][0])} is not live in the {self.kind} index")
        if not ids.size:
            return np.empty((0, self.dim), np.float32)
        return np.asarray(self.index.reconstruct_batch(ids), dtype=np.float32)

    def compact(self) -> None:
        """Drop tombstoned vectors: reset the index (keeping IVF training) and re-add the survivors."""
        if not len(self.tombstones):
            return
        labels = self.labels()
        keep = labels[~np.isin(labels, self.tombstones)]
        vectors = self.reconstruct(keep)
        self.index.reset()
        if keep.size:
            self.index.add_with_ids(vectors, keep)
        self.tombstones = np.empty(0, np.int64)
        self._changed(positions_moved=True)

    def _positions(self, ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """Internal positions `(m,) int64` of those `ids` present in the id map (tombstoned or not)."""
        positions, found = self._lookup(ids)
        return positions[found]

    def _flat_storage(self) -> faiss.Index:
        """The exact `IndexFlatIP` holding every vector at the same positions as the search index."""
        inner: Any = faiss.downcast_index(self.index.index)
        if self.index_type is IndexType.HNSW:
            return faiss.downcast_index(inner.storage)
        if self.index_type is IndexType.IVFPQ_REFINE:
            return faiss.downcast_index(inner.refine_index)
        return inner

    def search(self, queries: NDArray[np.float32], k: int, *, allowed_ids: NDArray[np.int64] | None = None,
               path: SearchPath = SearchPath.APPROXIMATE, ef_search: int | None = None, nprobe: int | None = None,
               k_factor: float | None = None) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Top-k by inner product: scores `(nq, k) float32` (-inf padding), ids `(nq, k) int64` (-1).

        EXACT and CERTIFIED give recall 1.0 (the paths for fences, where graph and IVF searches with a
        selector lose recall); EXACT costs ~ allowed count x dim x 4 bytes, CERTIFIED a quarter of that.
        """
        mask = None
        if allowed_ids is not None:
            mask = np.zeros(int(self.index.ntotal), dtype=bool)
            mask[self._positions(allowed_ids)] = True
        scores, ids, _ = self.search_positions(queries, k, mask, path=path, ef_search=ef_search, nprobe=nprobe,
                                               k_factor=k_factor)
        return scores, ids

    def search_positions(self, queries: NDArray[np.float32], k: int, allowed: NDArray[np.bool_] | None, *,
                         path: SearchPath, ef_search: int | None = None, nprobe: int | None = None,
                         k_factor: float | None = None,
                         ) -> tuple[NDArray[np.float32], NDArray[np.int64], CertifiedStats | None]:
        """`search` over a mask `(ntotal,) bool` of allowed internal positions (None: all; tombstones are
        always excluded). Also returns how the CERTIFIED path went (None on the other paths)."""
        queries = check_vectors(queries, self.dim, "queries")
        if k < 1:
            raise VectorError(f"k must be >= 1; got {k}")
        ntotal = int(self.index.ntotal)
        mask = allowed
        if len(self.tombstones):
            mask = np.ones(ntotal, dtype=bool) if allowed is None else allowed.copy()
            mask[self.tombstone_positions()] = False
        # The selector reads the bitmap's memory through a raw pointer: both stay referenced here.
        bitmap = np.packbits(mask, bitorder="little") if mask is not None else None
        sel = faiss.IDSelectorBitmap(ntotal, faiss.swig_ptr(bitmap)) if bitmap is not None else None
        stats = None

        def exact(rows: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
            found: tuple[NDArray[np.float32], NDArray[np.int64]] = self._flat_storage().search(
                queries[rows], k, params=_faiss.SearchParameters(sel=sel))
            return found

        if path is SearchPath.CERTIFIED:
            allowed_count = ntotal if mask is None else int(np.count_nonzero(mask))
            scores, positions, stats = certified_search(
                self.codes(), self.flat_vectors(), queries, k, bitmap, allowed_count, exact,
                threads=faiss.omp_get_max_threads())
        elif path is SearchPath.EXACT and mask is not None and np.count_nonzero(mask) <= GATHER_EXACT_MAX:
            scores, positions = exact_top_k(self.flat_vectors(), np.flatnonzero(mask), queries, k)
        elif path is SearchPath.EXACT:
            scores, positions = exact(np.arange(len(queries)))
        else:
            params = self._search_params(sel, ef_search, nprobe, k_factor)
            scores, positions = self.index.index.search(queries, k, params=params)
        labels = self.labels()
        ids = np.where(positions >= 0, labels[np.clip(positions, 0, None)], -1) if ntotal else positions
        scores = np.where(positions >= 0, scores, -np.inf).astype(np.float32)
        return scores, ids.astype(np.int64), stats

    def _search_params(self, sel: faiss.IDSelector | None, ef_search: int | None, nprobe: int | None,
                       k_factor: float | None) -> faiss.SearchParameters:
        if self.index_type is IndexType.HNSW:
            return _faiss.SearchParametersHNSW(sel=sel, efSearch=ef_search or self.params.hnsw_ef_search)
        if self.index_type is IndexType.IVFPQ_REFINE:
            base = _faiss.SearchParametersIVF(sel=sel, nprobe=nprobe or self.params.ivf_nprobe)
            refine = _faiss.IndexRefineSearchParameters(
                k_factor=k_factor or self.params.refine_k_factor, base_index_params=base)
            refine.referenced_objects = [base]
            return refine
        return _faiss.SearchParameters(sel=sel)
