"""VectorIndex: every index type against brute force, validation, incremental add and remove."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from indexers.vector_index import IndexParams, IndexType, SearchPath, VectorError, VectorIndex, choose_index_type

VectorFactory = Callable[..., NDArray[np.float32]]
RecallFn = Callable[[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]], float]
N, D = 10_000, 32
SMALL = IndexParams(hnsw_m=16, hnsw_ef_construction=80, hnsw_ef_search=64, ivf_nlist=128, pq_m=8,
                    ivf_nprobe=16, refine_k_factor=10.0)


def make_ids(n: int, seed: int = 7) -> NDArray[np.int64]:
    """Sparse, unordered ids like sha256-derived ones."""
    return np.random.default_rng(seed).choice(2**62, size=n, replace=False).astype(np.int64)


@pytest.fixture(scope="module")
def data(unit_vectors: VectorFactory) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    x = unit_vectors(N + 200, D, seed=1)
    return x[:N], make_ids(N), x[N:]


@pytest.fixture(scope="module")
def built(data: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]) -> dict[IndexType, VectorIndex]:
    db, ids, _ = data
    return {t: VectorIndex.build("face", ids, db, index_type=t, params=SMALL) for t in IndexType}


@pytest.mark.parametrize("index_type", list(IndexType))
def test_recall_vs_brute_force(index_type: IndexType, data: tuple[NDArray[np.float32], NDArray[np.int64],
                               NDArray[np.float32]], built: dict[IndexType, VectorIndex], recall: RecallFn) -> None:
    db, ids, queries = data
    index = built[index_type]
    scores, found = index.search(queries, 10)
    assert found.shape == (200, 10) and found.dtype == np.int64 and scores.dtype == np.float32
    assert np.all(np.diff(scores, axis=1) <= 1e-5)  # best first
    r = recall(db, ids, queries, found)
    assert r >= (0.999 if index_type is IndexType.FLAT else 0.95), f"{index_type} recall@10 {r:.3f}"


def test_choice_by_size() -> None:
    params = IndexParams(flat_max=100, ivfpq_min=1000)
    assert [choose_index_type(n, params) for n in (99, 100, 999, 1000)] == [
        IndexType.FLAT, IndexType.HNSW, IndexType.HNSW, IndexType.IVFPQ_REFINE]


def test_validation_errors_name_the_problem(unit_vectors: VectorFactory) -> None:
    x = unit_vectors(10, 8, seed=0)
    ids = np.arange(10, dtype=np.int64)
    with pytest.raises(VectorError, match="float32"):
        VectorIndex.build("face", ids, x.astype(np.float64))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(VectorError, match="row 3 contains NaN"):
        VectorIndex.build("face", ids, bad)
    with pytest.raises(VectorError, match="L2-normalised; row 0"):
        VectorIndex.build("face", ids, x * 2)
    with pytest.raises(VectorError, match="2-D"):
        VectorIndex.build("face", ids, x[0])
    with pytest.raises(VectorError, match="unique"):
        VectorIndex.build("face", np.zeros(10, dtype=np.int64), x)
    index = VectorIndex.build("face", ids, x)
    with pytest.raises(VectorError, match="dimension 4; index dimension is 8"):
        index.search(unit_vectors(1, 4, seed=0), 3)
    with pytest.raises(VectorError, match="already in the index"):
        index.add(ids[:2], x[:2])


@pytest.mark.parametrize("index_type", list(IndexType))
def test_incremental_add_and_remove(index_type: IndexType, unit_vectors: VectorFactory,
                                    recall: RecallFn) -> None:
    x = unit_vectors(6_000, D, seed=3)
    ids = make_ids(6_000, seed=3)
    params = IndexParams(hnsw_m=16, ivf_nlist=32, pq_m=8, ivf_nprobe=16, max_tombstone_fraction=0.2)
    index = VectorIndex.build("face", ids[:4_000], x[:4_000], index_type=index_type, params=params)
    index.add(ids[4_000:], x[4_000:])
    assert len(index) == 6_000
    # The query is the stored vector itself, so it must be its own top hit until withdrawn.
    withdrawn = ids[:300]
    _, before = index.search(x[:300], 1)
    assert (before[:, 0] == withdrawn).mean() > 0.95
    assert index.remove(np.concatenate([withdrawn, np.array([123], np.int64)])) == 300
    assert index.remove(withdrawn) == 0
    assert len(index) == 5_700
    _, after = index.search(x[:300], 10)
    assert not np.isin(after, withdrawn).any()
    live_ids, live_x = ids[300:], x[300:]
    assert recall(live_x, live_ids, x[:300], after) >= 0.95
    # Past the tombstone fraction the index compacts itself; results stay free of withdrawn ids.
    index.remove(ids[300:1_500])
    assert len(index.tombstones) == 0 and index.index.ntotal == 4_500
    _, compacted = index.search(x[:50], 10)
    assert not np.isin(compacted, ids[:1_500]).any()
    # A withdrawn id can come back (e.g. a wrongly withdrawn photo restored).
    index.add(ids[:10], x[:10])
    _, again = index.search(x[:10], 1)
    assert (again[:, 0] == ids[:10]).mean() >= 0.9


@pytest.mark.parametrize("index_type", list(IndexType))
def test_allowed_ids_restrict_results(index_type: IndexType, data: tuple[NDArray[np.float32], NDArray[np.int64],
                                      NDArray[np.float32]], built: dict[IndexType, VectorIndex],
                                      recall: RecallFn) -> None:
    db, ids, queries = data
    allowed = ids[::4]
    index = built[index_type]
    _, found = index.search(queries, 10, allowed_ids=allowed, ef_search=128)
    assert np.isin(found[found >= 0], allowed).all()
    assert recall(db[::4], allowed, queries, found) >= 0.95


def test_reconstruct_is_exact_and_refuses_unknown_ids(unit_vectors: VectorFactory) -> None:
    x = unit_vectors(3_000, D, seed=5)
    ids = make_ids(3_000, seed=5)
    index = VectorIndex.build("face", ids, x, index_type=IndexType.IVFPQ_REFINE,
                              params=IndexParams(ivf_nlist=16, pq_m=8))
    np.testing.assert_array_equal(index.reconstruct(ids[[5, 0, 2_999]]), x[[5, 0, 2_999]])
    with pytest.raises(KeyError, match="not live"):
        index.reconstruct(np.array([1], dtype=np.int64))


@pytest.mark.parametrize("index_type", list(IndexType))
def test_reorder_moves_vectors_but_keeps_every_id_with_its_vector(index_type: IndexType,
                                                                  unit_vectors: VectorFactory) -> None:
    x = unit_vectors(4_000, D, seed=8)
    ids = make_ids(4_000, seed=8)
    index = VectorIndex.build("face", ids, x, index_type=index_type, params=SMALL)
    queries = x[200:230]
    index.remove(ids[:100])  # tombstones (HNSW, IVF-PQ) are compacted away by the reorder
    before = {path: index.search(queries, 10, path=path) for path in (SearchPath.EXACT, SearchPath.CERTIFIED)}
    order = np.random.default_rng(9).permutation(np.arange(100, 4_000))
    moved = index.reorder(ids[order])
    assert moved == (index_type is not IndexType.IVFPQ_REFINE)
    assert index.aligned_with(ids[order]) == moved and len(index.tombstones) == 0
    np.testing.assert_array_equal(index.reconstruct(ids[order[:20]]), x[order[:20]])
    if moved:
        assert np.array_equal(index.labels(), ids[order])
        np.testing.assert_array_equal(index.flat_vectors()[:20], x[order[:20]])
    for path, (scores, found) in before.items():
        after_scores, after = index.search(queries, 10, path=path)
        assert after[:, 0].tolist() == ids[200:230].tolist()
        assert [set(row) for row in after.tolist()] == [set(row) for row in found.tolist()]
        np.testing.assert_allclose(after_scores, scores, atol=1e-5)
    with pytest.raises(VectorError, match="exactly once"):
        index.reorder(ids[order[:10]])


def test_exact_gather_path_equals_brute_force_with_ties(unit_vectors: VectorFactory) -> None:
    x = unit_vectors(3_000, D, seed=10)
    x[1_000:1_010] = x[5]  # exact ties: broken by position, deterministically
    ids = make_ids(3_000, seed=10)
    index = VectorIndex.build("face", ids, x, index_type=IndexType.FLAT)
    allowed = ids[::3]
    scores, found = index.search(x[[5, 7, 11]], 12, allowed_ids=allowed, path=SearchPath.EXACT)
    sub = x[::3]
    expected = np.argsort(-(x[[5, 7, 11]] @ sub.T), axis=1, kind="stable")[:, :12]
    np.testing.assert_allclose(scores, np.take_along_axis(x[[5, 7, 11]] @ sub.T, expected, axis=1), atol=1e-6)
    assert set(found[0].tolist()) == set(allowed[expected[0]].tolist())
    _, few = index.search(x[:2], 5, allowed_ids=ids[:3], path=SearchPath.EXACT)
    assert few[:, 3:].tolist() == [[-1, -1], [-1, -1]] and set(few[0, :3].tolist()) == set(ids[:3].tolist())
