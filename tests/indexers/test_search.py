"""Fenced search: only fenced, live ids of the index's kind come back, exact or through a selector."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

from indexers.fence import Circle, Fence, TimeWindow
from indexers.metadata import MetadataTable
from indexers.search import fenced_search
from indexers.vector_index import IndexParams, IndexType, SearchPath, VectorIndex

RecordFactory = Callable[..., tuple[pa.Table, pa.Table]]
VectorFactory = Callable[..., NDArray[np.float32]]
RecallFn = Callable[[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]], float]
N, D = 4_000, 32
CENTRE = (51.5007, -0.1246)


@pytest.fixture(scope="module")
def world(records: RecordFactory, unit_vectors: VectorFactory, t0: datetime,
          ) -> tuple[MetadataTable, NDArray[np.float32]]:
    rng = np.random.default_rng(11)
    lat = CENTRE[0] + rng.uniform(-0.02, 0.02, N)  # about +-2 km
    lon = CENTRE[1] + rng.uniform(-0.03, 0.03, N)
    taken = [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 7_200, N)]
    kinds = ["face" if i % 5 else "vehicle" for i in range(N)]
    det, photos = records(lat.tolist(), lon.tolist(), taken=taken, kinds=kinds)
    return MetadataTable.from_records(det, photos), unit_vectors(N + 50, D, seed=12)


def face_index(meta: MetadataTable, x: NDArray[np.float32], index_type: IndexType) -> VectorIndex:
    faces = meta.kind == "face"
    return VectorIndex.build("face", meta.ids[faces], x[:N][faces], index_type=index_type,
                             params=IndexParams(hnsw_m=16, ivf_nlist=32, pq_m=8, ivf_nprobe=16))


#: fenced_search thresholds that force each path: (exact_below, certified_fraction_below)
PATH_THRESHOLDS = {SearchPath.EXACT: (20_000, 0.0), SearchPath.CERTIFIED: (0, 1.0), SearchPath.APPROXIMATE: (0, 0.0)}


@pytest.mark.parametrize("index_type", list(IndexType))
@pytest.mark.parametrize("path", list(SearchPath))
def test_fenced_results_stay_inside_the_fence(index_type: IndexType, path: SearchPath, t0: datetime,
                                              world: tuple[MetadataTable, NDArray[np.float32]],
                                              recall: RecallFn) -> None:
    meta, x = world
    index = face_index(meta, x, index_type)
    fence = Fence(area=Circle(*CENTRE, 1_200.0), window=TimeWindow(t0, t0 + timedelta(hours=1)),
                  include_unplaced=False, include_untimed=False)
    queries = x[N:]
    exact_below, certified_fraction_below = PATH_THRESHOLDS[path]
    result = fenced_search(index, meta, queries, 10, fence=fence, exact_below=exact_below,
                           exact_fraction_below=0.0, certified_fraction_below=certified_fraction_below,
                           ef_search=256)
    inside = fence.mask(meta) & (meta.kind == "face")
    assert result.path is path and result.exact == (path is not SearchPath.APPROXIMATE)
    assert result.candidates == inside.sum()
    assert np.isin(result.ids[result.ids >= 0], meta.ids[inside]).all()
    assert (result.rows >= 0).all() and np.array_equal(meta.ids[result.rows], result.ids)
    truth_r = recall(x[:N][inside], meta.ids[inside], queries, result.ids)
    assert truth_r >= (1.0 if result.exact else 0.95)


def test_unfenced_and_withdrawn(world: tuple[MetadataTable, NDArray[np.float32]]) -> None:
    meta, x = world
    index = face_index(meta, x, IndexType.HNSW)
    faces = np.flatnonzero(meta.kind == "face")
    withdrawn = meta.ids[faces[:20]]
    index.remove(withdrawn)
    for exact_below, certified_fraction_below in PATH_THRESHOLDS.values():
        result = fenced_search(index, meta, x[faces[:20]], 5, fence=None, exact_below=exact_below,
                               exact_fraction_below=0.0, certified_fraction_below=certified_fraction_below)
        assert not np.isin(result.ids, withdrawn).any()
        assert result.candidates == len(faces) - 20
        assert set(meta.kind[result.rows.ravel()]) == {"face"}


def test_fence_with_nothing_inside_returns_padding(world: tuple[MetadataTable, NDArray[np.float32]]) -> None:
    meta, x = world
    index = face_index(meta, x, IndexType.FLAT)
    far = Fence(area=Circle(0.0, 0.0, 10.0), window=None, include_unplaced=False, include_untimed=False)
    result = fenced_search(index, meta, x[N:N + 2], 3, fence=far)
    assert result.candidates == 0 and (result.ids == -1).all() and (result.rows == -1).all()
    assert meta.take(result.rows[0][result.rows[0] >= 0]).num_rows == 0


def test_selective_fence_goes_exact_whatever_its_size(world: tuple[MetadataTable, NDArray[np.float32]],
                                                      recall: RecallFn) -> None:
    meta, x = world
    index = face_index(meta, x, IndexType.HNSW)
    fence = Fence(area=Circle(*CENTRE, 150.0), window=None, include_unplaced=False, include_untimed=False)
    result = fenced_search(index, meta, x[N:], 10, fence=fence, exact_below=0, exact_fraction_below=0.05)
    inside = fence.mask(meta) & (meta.kind == "face")
    assert result.exact and 0 < result.candidates < 0.05 * len(index)
    assert recall(x[:N][inside], meta.ids[inside], x[N:], result.ids) == 1.0
    scores = result.scores[:, : min(10, result.candidates)]
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", x[N:], x[result.rows[:, : scores.shape[1]]]),
                               atol=1e-5)
