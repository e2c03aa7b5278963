"""Certified search over 8-bit codes: equal to brute force, including when the first candidates are not enough."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from indexers import certified
from indexers.certified import CompressedCodes, certified_search
from indexers.metadata import MetadataTable
from indexers.storage_format import load_version, save_version
from indexers.vector_index import IndexParams, IndexType, SearchPath, VectorIndex
from tests.indexers.conftest import clustered_unit_vectors

N, D, K = 6_000, 32, 10
PARAMS = IndexParams(hnsw_m=16, ivf_nlist=32, pq_m=8)


def brute_force_top(db: NDArray[np.float32], ids: NDArray[np.int64], queries: NDArray[np.float32],
                    k: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    scores = queries @ db.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, top, axis=1), ids[top]


def assert_same_top(found: tuple[NDArray[np.float32], NDArray[np.int64]],
                    truth: tuple[NDArray[np.float32], NDArray[np.int64]]) -> None:
    """Same scores rank by rank; same ids except where two scores tie (to float32 rounding)."""
    np.testing.assert_allclose(found[0], truth[0], atol=2e-6)
    tied = np.abs(np.diff(truth[0], axis=1, prepend=np.inf)) < 2e-6
    tied |= np.abs(np.diff(truth[0], axis=1, append=-np.inf)) < 2e-6
    assert np.array_equal(found[1][~tied], truth[1][~tied])
    for row in range(len(truth[1])):
        assert set(found[1][row]) == set(truth[1][row]) or tied[row].any()


@pytest.fixture(scope="module")
def data() -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]:
    x = clustered_unit_vectors(N + 20, D, seed=21)
    ids = np.random.default_rng(22).choice(2**40, size=N, replace=False).astype(np.int64)
    return x[:N], ids, x[N:]


@pytest.mark.parametrize("index_type", [IndexType.FLAT, IndexType.HNSW])
@pytest.mark.parametrize("fraction", [0.002, 0.05, 0.3, 1.0])
def test_certified_equals_brute_force(index_type: IndexType, fraction: float, monkeypatch: pytest.MonkeyPatch,
                                     data: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]
                                     ) -> None:
    monkeypatch.setattr(certified, "CODE_BLOCK", 1024)  # several shards, some of them empty under a fence
    db, ids, queries = data
    index = VectorIndex.build("face", ids, db, index_type=index_type, params=PARAMS)
    keep = np.sort(np.random.default_rng(23).choice(N, max(1, int(N * fraction)), replace=False))
    found = index.search(queries, K, allowed_ids=ids[keep], path=SearchPath.CERTIFIED)
    assert_same_top(found, brute_force_top(db[keep], ids[keep], queries, K))
    assert len(index.codes().shards) == -(-N // 1024)


def test_error_bound_holds_for_every_stored_vector(
        data: tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32]]) -> None:
    db, _, queries = data
    codes = CompressedCodes.build(db)
    decoded = np.concatenate([shard.reconstruct_n(0, shard.ntotal) for shard in codes.shards])
    gap = np.abs(queries @ db.T - queries @ decoded.T).max(axis=1)
    assert (gap <= codes.eps(queries)).all() and (codes.eps(queries) < 0.05).all()
    assert codes.nbytes >= N * D


def near_ties(n_ties: int, seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """`n_ties` vectors within 1e-4 of one direction (closer than one 8-bit step) among spread-out ones,
    and a query along that direction: the codes cannot order the near-ties, only the exact scores can."""
    rng = np.random.default_rng(seed)
    base = clustered_unit_vectors(2_000, D, seed=seed)
    centre = base[0]
    ties = centre + 1e-4 * rng.standard_normal((n_ties, D)).astype(np.float32)
    db = np.concatenate([base[1:], ties]).astype(np.float32)
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    return db, centre[None, :]


def test_near_ties_make_the_first_candidates_insufficient_and_the_search_expands() -> None:
    db, query = near_ties(200, seed=31)
    ids = np.arange(len(db), dtype=np.int64)
    codes = CompressedCodes.build(db)
    views = db.copy()

    def no_fallback(rows: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        raise AssertionError("the expansion alone should certify this")

    scores, positions, stats = certified_search(codes, views, query, K, None, len(db), no_fallback, first_k=20)
    assert stats.scans > 1 and stats.fallbacks == 0  # k' = 20 could not be certified with 200 near-ties
    assert_same_top((scores, ids[positions]), brute_force_top(db, ids, query, K))


def test_too_many_near_ties_fall_back_to_the_exact_scan() -> None:
    db, query = near_ties(600, seed=32)
    ids = 1_000 + np.arange(len(db), dtype=np.int64)
    index = VectorIndex.build("face", ids, db, index_type=IndexType.FLAT)
    calls: list[int] = []

    def exact(rows: NDArray[np.int64]) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        calls.append(len(rows))
        found: tuple[NDArray[np.float32], NDArray[np.int64]] = index._flat_storage().search(query[rows], K)
        return found

    scores, positions, stats = certified_search(index.codes(), index.flat_vectors(), query, K, None, len(db),
                                                exact, first_k=16, max_rerank=256)
    assert stats.fallbacks == 1 and calls == [1]
    assert_same_top((scores, ids[positions]), brute_force_top(db, ids, query, K))


def test_vectors_added_outside_the_trained_range_widen_the_bound() -> None:
    rng = np.random.default_rng(41)
    db = clustered_unit_vectors(3_000, D, seed=41)
    db[:, 0] = np.clip(db[:, 0], -0.05, 0.05)  # a narrow trained range in dimension 0
    db /= np.linalg.norm(db, axis=1, keepdims=True)
    ids = np.arange(len(db), dtype=np.int64)
    index = VectorIndex.build("face", ids, db, index_type=IndexType.HNSW, params=PARAMS)
    before = index.codes().max_error[0]
    # Added later: vectors far outside the range, clipped by the codes, and the true answers to the query.
    late = 0.9 * np.eye(D, dtype=np.float32)[0] + 0.1 * rng.standard_normal((30, D)).astype(np.float32)
    late /= np.linalg.norm(late, axis=1, keepdims=True)
    late_ids = 10_000 + np.arange(30, dtype=np.int64)
    index.add(late_ids, late)
    assert index.codes().max_error[0] > 10 * before
    query = np.eye(D, dtype=np.float32)[:1]
    approx_top = index.codes().scan(query, K, None)[1][0]
    assert not np.isin(approx_top, np.arange(len(db), len(db) + 30)).all()  # the codes alone get it wrong
    all_db, all_ids = np.concatenate([db, late]), np.concatenate([ids, late_ids])
    scores, found, stats = index.search_positions(query, K, None, path=SearchPath.CERTIFIED)
    assert stats is not None and (stats.scans > 1 or stats.fallbacks)
    assert_same_top((scores, found), brute_force_top(all_db, all_ids, query, K))


@pytest.mark.parametrize("index_type", [IndexType.FLAT, IndexType.HNSW])
def test_codes_follow_add_remove_compact_and_reload(index_type: IndexType, tmp_path: Path,
                                                    data: tuple[NDArray[np.float32], NDArray[np.int64],
                                                                NDArray[np.float32]]) -> None:
    db, ids, queries = data
    index = VectorIndex.build("face", ids[:4_000], db[:4_000], index_type=index_type, params=PARAMS).warm()
    index.add(ids[4_000:], db[4_000:])
    gone = ids[::7]
    index.remove(gone)
    live = ~np.isin(ids, gone)
    truth = brute_force_top(db[live], ids[live], queries, K)
    assert_same_top(index.search(queries, K, path=SearchPath.CERTIFIED), truth)
    index.compact()
    assert_same_top(index.search(queries, K, path=SearchPath.CERTIFIED), truth)
    meta = MetadataTable(  # the vectors are what is under test here; no metadata rows needed
        ids=np.empty(0, np.int64), lat=np.empty(0), lon=np.empty(0), position_trusted=np.empty(0, bool),
        taken_at=np.empty(0, np.int64), time_known=np.empty(0, bool), time_trusted=np.empty(0, bool),
        detection_id=np.empty(0, object), photo_id=np.empty(0, object), event_id=np.empty(0, object),
        kind=np.empty(0, object), attributes=np.empty(0, object), box=np.empty((0, 4), np.float32))
    loaded, _, _ = load_version(save_version(tmp_path, "v1", index, meta, source_run_ids=["r1"]))
    assert_same_top(loaded.search(queries, K, path=SearchPath.CERTIFIED), truth)
