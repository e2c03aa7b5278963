"""Fenced similarity search: only detections inside the fence can ever be returned.

The fence is evaluated on the metadata columns first (`Fence.mask`: only the time window's slice of a table in
layout order, `indexers.layout`; cheap comparisons before geometry), then mapped to the index's internal
positions: nothing to map when the version's vectors are stored in its metadata's row order (the usual case),
otherwise through a lookup the index keeps for the metadata's id column. Because rows are ordered by capture
time, a fenced subset lies in one slice of the codes and vectors, which is what makes the scans below fast; a
fence with no time locality (e.g. a whole year) is correct but scans scattered rows. Which vector search
answers depends on how much the fence keeps (`choose_path`):

- at most `exact_below` vectors, or under `exact_fraction_below` of the index: EXACT, the float32 vectors of
  the fenced subset scored in place (recall 1.0; cheapest when the subset is small);
- under `certified_fraction_below` of the index: CERTIFIED (`indexers.certified`), a scan of 8-bit codes
  with an exact re-rank and a proof that nothing unscanned can enter the top k (recall 1.0; a quarter of
  the bytes of EXACT, 0.9-1.7x faster on random 1M x 512-d fences, far more on the slices of the layout);
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

#: From bench/search.py at 1M x 512-d (docs/BENCHMARKS.md, Run 3), end to end in layout order: EXACT, which scores
#: only the fenced rows, beat CERTIFIED at 1k fenced vectors (3.8-5.6 vs 8.4-9.4 ms) and 10k (6.5-7.1 vs 10.5-11.4
#: ms); CERTIFIED won at 100k (15-20 vs 21-22 ms). Both have recall 1.0.
DEFAULT_EXACT_BELOW = 20_000
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
    keep = meta.kind_mask(index.kind).copy() if fence is None else fence.mask(meta) & meta.kind_mask(index.kind)
    if index.aligned_with(meta.ids):
        allowed = keep  # metadata row i is position i (a version in layout order): no id mapping to do
    else:
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
