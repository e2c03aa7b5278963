"""Fenced similarity search: only detections inside the fence can ever be returned.

The fence is evaluated on the metadata columns first. If it keeps at most `exact_below` vectors, or
less than `exact_fraction_below` of the index, the search is exact: a scan of the flat vector
storage restricted to the fenced ids (recall 1.0). Otherwise the HNSW / IVF index searches with
the same selector. Why both rules: filtered HNSW and IVF lose recall as the fence gets selective
(bench/search.py, 100k vectors: HNSW efSearch 128 keeps recall@10 0.98 with a 10% fence but 0.53
with a 1% fence), while the exact scan costs about allowed-count x dim. Both paths keep only the
index's embedding kind and skip withdrawn (removed) ids.

    result = fenced_search(index, meta, queries, k=10, fence=Fence(area=Circle(51.5, -0.12, 500),
                           window=None, include_unplaced=False, include_untimed=True))
    result.ids, result.scores, meta.take(result.rows[0][result.rows[0] >= 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from indexers.fence import Fence
from indexers.metadata import MetadataTable
from indexers.vector_index import VectorIndex, check_vectors

#: From bench/search.py: an exact scan of 10k fenced vectors costs a few ms, like a filtered HNSW query.
DEFAULT_EXACT_BELOW = 20_000
DEFAULT_EXACT_FRACTION_BELOW = 0.05


@dataclass(frozen=True)
class SearchResult:
    """scores `(nq, k) float32` (-inf padding), ids `(nq, k) int64` (-1), rows `(nq, k) int64` (-1):
    rows index the `MetadataTable` the search was run against. `exact` says which path ran."""

    scores: NDArray[np.float32]
    ids: NDArray[np.int64]
    rows: NDArray[np.int64]
    exact: bool
    candidates: int


def fenced_ids(index: VectorIndex, meta: MetadataTable, fence: Fence | None) -> NDArray[np.int64]:
    """`(m,) int64` ids of the index's kind inside the fence and live in the index."""
    keep = meta.kind == index.kind
    if fence is not None:
        keep &= fence.mask(meta)
    ids = meta.ids[keep]
    return ids[index.contains(ids)]


def fenced_search(index: VectorIndex, meta: MetadataTable, queries: NDArray[np.float32], k: int, *,
                  fence: Fence | None, exact_below: int = DEFAULT_EXACT_BELOW,
                  exact_fraction_below: float = DEFAULT_EXACT_FRACTION_BELOW, ef_search: int | None = None,
                  nprobe: int | None = None, k_factor: float | None = None) -> SearchResult:
    """Top-k neighbours of `queries` `(nq, d) float32` among detections inside `fence` (None: all).

    The fence must be given explicitly (None included) so that an unfenced search is a decision.
    """
    queries = check_vectors(queries, index.dim, "queries")
    allowed = fenced_ids(index, meta, fence)
    exact = len(allowed) <= exact_below or len(allowed) < exact_fraction_below * len(index)
    everything = len(allowed) == len(index)  # allowed is a subset of the live ids: nothing to filter
    scores, ids = index.search(queries, k, allowed_ids=None if everything else allowed, exact=exact,
                               ef_search=ef_search, nprobe=nprobe, k_factor=k_factor)
    return SearchResult(scores=scores, ids=ids, rows=meta.rows_of(ids), exact=exact, candidates=len(allowed))
