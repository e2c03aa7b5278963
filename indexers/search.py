"""Fenced similarity search: only detections inside the fence can ever be returned.

The fence is evaluated on the metadata columns first (`Fence.mask`: cheap comparisons before geometry),
then mapped to the index's internal positions through a lookup the index keeps for the metadata's id
column. Which vector search answers depends on how much the fence keeps (`choose_path`):

- at most `exact_below` vectors, or under `exact_fraction_below` of the index: EXACT, a scan of the
  float32 vectors of the fenced subset (recall 1.0; cheapest when the subset is small);
- under `certified_fraction_below` of the index: CERTIFIED (`indexers.certified`), a scan of 8-bit codes
  with an exact re-rank and a proof that nothing unscanned can enter the top k (recall 1.0; a quarter of
  the bytes of EXACT, 0.9-1.7x faster on random 1M x 512-d fences, far more on contiguous ones);
- otherwise (no fence, or a fence keeping most of the index): APPROXIMATE, the HNSW / IVF index with
  the same selector (recall ~0.98 at efSearch 128, a fraction of a millisecond).

Why: filtered HNSW and IVF lose recall as the fence gets selective (0.53 at a 1 % fence of 100k), while
scans cost about allowed-count x bytes per vector. Every path keeps only the index's embedding kind and
skips withdrawn (removed) ids.

    result = fenced_search(index, meta, queries, k=10, fence=Fence(area=Circle(51.5, -0.12, 500),
                           window=None, include_unplaced=False, include_untimed=True))
    result.ids, result.scores, meta.take(result.rows[0][result.rows[0] >= 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexers.certified import CertifiedStats
from indexers.fence import Fence
from indexers.metadata import MetadataTable
from indexers.vector_index import SearchPath, VectorIndex, check_vectors

#: From bench/search.py at 1M x 512-d (docs/BENCHMARKS.md): at 1k fenced vectors EXACT and CERTIFIED cost the
#: same (~5.5 ms); from 10k up CERTIFIED ran 0.9-1.7x faster across runs (its codes are a quarter of the bytes,
#: but a scattered fence touches most memory pages either way), both with recall 1.0.
DEFAULT_EXACT_BELOW = 5_000
DEFAULT_EXACT_FRACTION_BELOW = 0.0
#: Fences keeping less than this share of the index are searched CERTIFIED (exact), larger ones APPROXIMATE.
DEFAULT_CERTIFIED_FRACTION_BELOW = 0.5


@dataclass(frozen=True)
class SearchResult:
    """scores `(nq, k) float32` (-inf padding), ids `(nq, k) int64` (-1), rows `(nq, k) int64` (-1):
    rows index the `MetadataTable` the search was run against. `path` says which search ran, `exact`
    whether its result is exact (EXACT and CERTIFIED), `certified` how the certified scan went."""

    scores: NDArray[np.float32]
    ids: NDArray[np.int64]
    rows: NDArray[np.int64]
    exact: bool
    candidates: int
    path: SearchPath = SearchPath.EXACT
    certified: CertifiedStats | None = None


def fenced_positions(index: VectorIndex, meta: MetadataTable, fence: Fence | None) -> NDArray[np.bool_]:
    """`(ntotal,) bool` over the index's internal positions: live vectors of its kind inside the fence."""
    keep = meta.kind_mask(index.kind)
    if fence is not None:
        keep &= fence.mask(meta)
    positions = index.positions_of(meta.ids)[keep]
    allowed = np.zeros(int(index.index.ntotal), dtype=bool)
    allowed[positions[positions >= 0]] = True
    allowed[index.tombstone_positions()] = False
    return allowed


def fenced_ids(index: VectorIndex, meta: MetadataTable, fence: Fence | None) -> NDArray[np.int64]:
    """`(m,) int64` ids of the index's kind inside the fence and live in the index."""
    return index.labels()[fenced_positions(index, meta, fence)]


def choose_path(allowed: int, live: int, *, exact_below: int, exact_fraction_below: float,
                certified_fraction_below: float) -> SearchPath:
    """Which search answers a fence keeping `allowed` of the `live` vectors (see module docstring)."""
    if allowed <= exact_below or allowed < exact_fraction_below * live:
        return SearchPath.EXACT
    if allowed < certified_fraction_below * live:
        return SearchPath.CERTIFIED
    return SearchPath.APPROXIMATE


def fenced_search(index: VectorIndex, meta: MetadataTable, queries: NDArray[np.float32], k: int, *,
                  fence: Fence | None, exact_below: int = DEFAULT_EXACT_BELOW,
                  exact_fraction_below: float = DEFAULT_EXACT_FRACTION_BELOW,
                  certified_fraction_below: float = DEFAULT_CERTIFIED_FRACTION_BELOW, ef_search: int | None = None,
                  nprobe: int | None = None, k_factor: float | None = None) -> SearchResult:
    """Top-k neighbours of `queries` `(nq, d) float32` among detections inside `fence` (None: all).

    The fence must be given explicitly (None included) so that an unfenced search is a decision.
    """
    queries = check_vectors(queries, index.dim, "queries")
    allowed = fenced_positions(index, meta, fence)
    count = int(np.count_nonzero(allowed))
    path = choose_path(count, len(index), exact_below=exact_below, exact_fraction_below=exact_fraction_below,
                       certified_fraction_below=certified_fraction_below)
    everything = count == len(index)  # allowed holds only live positions: nothing to filter
    scores, ids, stats = index.search_positions(queries, k, None if everything else allowed, path=path,
                                                ef_search=ef_search, nprobe=nprobe, k_factor=k_factor)
    return SearchResult(scores=scores, ids=ids, rows=meta.rows_of(ids), exact=path is not SearchPath.APPROXIMATE,
                        candidates=count, path=path, certified=stats)
