"""Certified exact top-k over 8-bit codes: scan 4x fewer bytes than float32, re-rank, prove the result exact.

Every stored vector x `(d,) float32` also has 8-bit codes, FAISS `IndexScalarQuantizer` QT_8bit: per
dimension, 256 levels over the [min, max] range of the vectors seen when the codes were built; x-hat is the
decoded vector. A query q scores a code as approx = q . x-hat, and for every stored vector at once

    |q.x - approx(x)| <= eps(q) = min(sum_i |q_i| e_i, |q| r)

with e_i the largest |x_i - x-hat_i| and r the largest |x - x-hat| *measured over every stored vector*
(never assumed from the build range: a vector added later and clipped raises e_i and r), plus a float32
rounding slack for the two dot products. `certified_search` scans the fenced codes for the top k' approximate
candidates, re-ranks them with the exact float32 vectors, and accepts the top k when the k'-th approximate
score + eps is below the k-th exact score: every vector it did not re-rank then scores at most that much
exactly, so none can enter the top k. Otherwise k' grows (x4) and the scan repeats, and past `max_rerank`
candidates the caller's plain exact float32 scan answers. Recall 1.0 by construction, not by luck.

Codes are kept in shards of `CODE_BLOCK` rows (FAISS indexes over consecutive positions) so that a fence's
bitmap is sliced per shard without copying, empty shards are skipped and shards are scanned in parallel.
Memory: d bytes a vector (512 MB for 1M x 512-d) on top of the float32 storage it re-ranks from.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

#: Rows per FAISS shard; a multiple of 8 so a shard's slice of a packed bitmap starts on a byte. 32k rows (16 MB at
#: d = 512) so that a fence's time slice spans several shards and the scan splits evenly over the threads.
CODE_BLOCK = 1 << 15
#: Candidates the first pass re-ranks at least (then 4k if larger). Re-ranking 100 costs ~50 us; at 1M x 512-d, 40
#: left 9-14 % of the queries of a 10 % fence to a second scan (p99 34 ms), 100 none (p99 16 ms; bench/search.py).
FIRST_RERANK = 100
#: Rows encoded at a time (bounds the float32 temporaries of a build to ~130 MB at d = 512).
ENCODE_CHUNK = 1 << 16
# faiss 1.15's partial stubs lack the keyword constructors it adds at import (see vector_index.py).
_faiss: Any = faiss

#: (first position, shard, its slice of the bitmap, selector over that slice)
_ScanJob = tuple[int, faiss.IndexScalarQuantizer, NDArray[np.uint8] | None, faiss.IDSelector | None]
ExactScan = Callable[[NDArray[np.int64]], tuple[NDArray[np.float32], NDArray[np.int64]]]


@dataclass(frozen=True)
class CertifiedStats:
    """How a certified search went: `scans` passes over the fenced codes (1 when the first k' sufficed),
    `reranked` exact scores computed, `fallbacks` queries answered by the plain exact scan."""

    scans: int
    reranked: int
    fallbacks: int


def _float_slack(dim: int) -> float:
    """Bound on float32 rounding of two d-term dot products of unit-norm-sized vectors (gamma_d each); it also
    covers the ~1e-7 relative difference between FAISS's SIMD decoding in the scan and `sa_decode`."""
    return 2.0 * dim * float(np.finfo(np.float32).eps)


class CompressedCodes:
    """8-bit codes of vectors at positions 0..ntotal-1 (the flat storage's order), with measured error bounds."""

    def __init__(self, trained: faiss.IndexScalarQuantizer) -> None:
        self.dim = int(trained.d)
        self._empty = trained  # trained, holds no codes: each shard starts as a clone of it
        self.max_error = np.zeros(self.dim, np.float32)  # e_i: largest |x_i - x-hat_i| over stored vectors
        self.max_residual = 0.0  # r: largest |x - x-hat| over stored vectors
        self.shards: list[faiss.IndexScalarQuantizer] = []
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def build(cls, vectors: NDArray[np.float32]) -> CompressedCodes:
        """Codes of `vectors` `(n, d) float32`, ranges per dimension from their min and max."""
        dim = vectors.shape[1]
        low, high = np.full(dim, np.inf, np.float32), np.full(dim, -np.inf, np.float32)
        for start in range(0, len(vectors), ENCODE_CHUNK):
            chunk = vectors[start:start + ENCODE_CHUNK]
            np.minimum(low, chunk.min(axis=0), out=low)
            np.maximum(high, chunk.max(axis=0), out=high)
        if not len(vectors):
            low, high = np.zeros(dim, np.float32), np.zeros(dim, np.float32)
        trained = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        trained.train(np.stack([low, high]))  # min-max ranges: training on the extremes gives the same ranges
        codes = cls(trained)
        codes.add(vectors)
        return codes

    @property
    def ntotal(self) -> int:
        return sum(int(shard.ntotal) for shard in self.shards)

    @property
    def nbytes(self) -> int:
        """Bytes held by the codes (the float32 vectors they re-rank from are not counted)."""
        return self.ntotal * self.dim + 3 * self.dim * 4  # codes; per-dimension min, range, error bound

    def add(self, vectors: NDArray[np.float32]) -> None:
        """Append codes for `vectors` `(m, d) float32` at the next positions; their errors join the bounds."""
        for start in range(0, len(vectors), ENCODE_CHUNK):
            chunk = np.ascontiguousarray(vectors[start:start + ENCODE_CHUNK])
            encoded = self._empty.sa_encode(chunk)
            # The error is measured on what the scan will decode, whatever FAISS's rounding and clipping.
            residual = chunk - self._empty.sa_decode(encoded)
            np.maximum(self.max_error, np.abs(residual).max(axis=0), out=self.max_error)
            norms = np.sqrt(np.einsum("ij,ij->i", residual, residual, dtype=np.float64))
            self.max_residual = max(self.max_residual, float(norms.max(initial=0.0)))
            self._append(encoded)

    def _append(self, encoded: NDArray[np.uint8]) -> None:
        done = 0
        while done < len(encoded):
            if not self.shards or self.shards[-1].ntotal == CODE_BLOCK:
                shard: Any = faiss.clone_index(self._empty)  # typed as the base Index in the stubs
                self.shards.append(shard)
            room = CODE_BLOCK - int(self.shards[-1].ntotal)
            part = np.ascontiguousarray(encoded[done:done + room])
            self.shards[-1].add_sa_codes(part)
            done += len(part)

    def eps(self, queries: NDArray[np.float32]) -> NDArray[np.float64]:
        """`(nq,) float64` bound on |exact - approximate| score for every stored vector, rounding included."""
        per_dim = np.abs(queries.astype(np.float64)) @ self.max_error.astype(np.float64)
        cauchy = np.linalg.norm(queries.astype(np.float64), axis=1) * self.max_residual
        return np.minimum(per_dim, cauchy) + _float_slack(self.dim)

    def scan(self, queries: NDArray[np.float32], k: int, bitmap: NDArray[np.uint8] | None, *,
             threads: int = 1) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """Approximate top-k: scores `(nq, k) float32` (-inf padding), positions `(nq, k) int64` (-1).

        `bitmap`: packed little-endian bits over positions (None = all). Shards with no bit set are skipped.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        jobs: list[_ScanJob] = []
        for number, shard in enumerate(self.shards):
            start, count = number * CODE_BLOCK, int(shard.ntotal)
            if bitmap is None:
                jobs.append((start, shard, None, None))
                continue
            bits = bitmap[start // 8:(start + count + 7) // 8]
            if bits.any():
                # The selector reads `bits` through a raw pointer: the job tuple keeps the view alive.
                jobs.append((start, shard, bits, faiss.IDSelectorBitmap(count, faiss.swig_ptr(bits))))

        def run(job: _ScanJob) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
            start, shard, _bits, sel = job
            params = _faiss.SearchParameters(sel=sel) if sel is not None else None
            scores, labels = shard.search(queries, k, params=params)
            return scores, np.where(labels >= 0, labels + start, -1)

        if threads > 1 and len(jobs) > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="codes-scan")
            parts = list(self._pool.map(run, jobs))  # FAISS releases the GIL while it scans
        else:
            parts = [run(job) for job in jobs]
        return _merge_top(parts, len(queries), k)


def _merge_top(parts: list[tuple[NDArray[np.float32], NDArray[np.int64]]], nq: int, k: int
               ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if not parts:
        return np.full((nq, k), -np.inf, np.float32), np.full((nq, k), -1, np.int64)
    scores = np.concatenate([p[0] for p in parts], axis=1)
    positions = np.concatenate([p[1] for p in parts], axis=1)
    scores = np.where(positions >= 0, scores, -np.inf).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)


def certified_search(codes: CompressedCodes, vectors: NDArray[np.float32], queries: NDArray[np.float32], k: int,
                     bitmap: NDArray[np.uint8] | None, allowed: int, exact_scan: ExactScan, *,
                     first_k: int | None = None, max_rerank: int = 4096, threads: int = 1,
                     ) -> tuple[NDArray[np.float32], NDArray[np.int64], CertifiedStats]:
    """Exact top-k of `queries` `(nq, d) float32` among the `allowed` positions set in `bitmap`.

    `vectors` `(ntotal, d) float32` are the exact stored vectors (positions as in `codes`); `exact_scan(rows)`
    answers the given query rows by a plain exact scan (the fallback). Returns scores `(nq, k) float32`
    (-inf padding), positions `(nq, k) int64` (-1) and what it took.
    """
    nq = len(queries)
    out_scores = np.full((nq, k), -np.inf, np.float32)
    out_positions = np.full((nq, k), -1, np.int64)
    eps = codes.eps(queries)
    pending = np.arange(nq)
    k_prime = min(max(first_k or max(4 * k, FIRST_RERANK), k), max(allowed, k))
    scans = reranked = 0
    while pending.size and k_prime <= max(max_rerank, k):
        approx, positions = codes.scan(queries[pending], k_prime, bitmap, threads=threads)
        scans += 1
        still = []
        for row, query in enumerate(pending):
            found = positions[row][positions[row] >= 0]
            exact = vectors[found] @ queries[query]
            reranked += len(found)
            order = np.argsort(-exact, kind="stable")[:k]
            complete = len(found) < k_prime or k_prime >= allowed  # every allowed vector was re-ranked
            if complete or (len(order) == k and approx[row, -1] + eps[query] < exact[order[-1]]):
                out_scores[query, :len(order)] = exact[order]
                out_positions[query, :len(order)] = found[order]
            else:
                still.append(query)
        pending = np.asarray(still, dtype=np.int64)
        k_prime = min(4 * k_prime, allowed) if k_prime < allowed else k_prime + 1
    if pending.size:
        out_scores[pending], out_positions[pending] = exact_scan(pending)
    return out_scores, out_positions, CertifiedStats(scans, reranked, int(pending.size))
