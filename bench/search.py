"""Benchmark the indexers: build time, single-query latency (p50/p99), QPS and recall@10 vs exact.

Index types Flat / HNSW (several efSearch) / IVF-PQ + refine, unfenced and fenced (fences keeping
1% and 10% of the vectors, through the FAISS selector and through exact search on the subset), on
seeded clustered unit vectors (dim 128 by default). Queries run one at a time, as investigators
issue them, so QPS = 1 / mean latency on this machine's threads.

    .venv/bin/python bench/search.py --sizes 10000,100000 --out bench-search.json
    .venv/bin/python bench/search.py --million --out bench-search-1m.json   # adds 1,000,000
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from indexers.vector_index import IndexParams, IndexType, VectorIndex

K = 10
SearchFn = Callable[[NDArray[np.float32]], NDArray[np.int64]]


def unit_vectors(n: int, d: int, rng: np.random.Generator, centres: NDArray[np.float64]) -> NDArray[np.float32]:
    x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def exact_ids(db: NDArray[np.float32], ids: NDArray[np.int64], queries: NDArray[np.float32]) -> NDArray[np.int64]:
    flat = faiss.IndexFlatIP(db.shape[1])
    flat.add(db)
    _, pos = flat.search(queries, K)
    return ids[pos]


def measure(search: SearchFn, queries: NDArray[np.float32], truth: NDArray[np.int64]) -> dict[str, float]:
    latencies, found = [], []
    for q in queries:
        start = time.perf_counter()
        found.append(search(q[None, :])[0])
        latencies.append(time.perf_counter() - start)
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    lat = np.array(latencies) * 1e3
    return {"qps": round(1e3 / lat.mean(), 1), "p50_ms": round(float(np.percentile(lat, 50)), 3),
            "p99_ms": round(float(np.percentile(lat, 99)), 3), "recall_at_10": round(hits / truth.size, 4)}


def configs(n: int) -> list[tuple[str, IndexType, list[dict[str, Any]]]]:
    return [
        ("flat", IndexType.FLAT, [{}]),
        ("hnsw M32", IndexType.HNSW, [{"ef_search": ef} for ef in (32, 64, 128, 256)]),
        ("ivfpq+refine", IndexType.IVFPQ_REFINE,
         [{"nprobe": p, "k_factor": 8.0} for p in (16, 64)]),
    ]


def bench_size(n: int, d: int, nq: int, seed: int, console: Console) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1024, d))
    db, queries = unit_vectors(n, d, rng, centres), unit_vectors(nq, d, rng, centres)
    ids = rng.choice(2**62, size=n, replace=False).astype(np.int64)
    fences = {"none": None, **{f"{int(f * 100)}%": np.sort(rng.choice(n, int(n * f), replace=False))
                               for f in (0.01, 0.10)}}
    truth = {name: exact_ids(db if sel is None else db[sel], ids if sel is None else ids[sel], queries)
             for name, sel in fences.items()}
    rows: list[dict[str, Any]] = []
    params = IndexParams(hnsw_m=32, hnsw_ef_construction=100)
    for label, index_type, search_settings in configs(n):
        start = time.perf_counter()
        index = VectorIndex.build("bench", ids, db, index_type=index_type, params=params)
        build_s = time.perf_counter() - start
        console.log(f"n={n:,} {label}: built in {build_s:.1f} s")
        for settings in search_settings:
            for fence_name, sel in fences.items():
                allowed = None if sel is None else ids[sel]

                def run(q: NDArray[np.float32], allowed: NDArray[np.int64] | None = allowed, index: VectorIndex = index,
                        settings: dict[str, Any] = settings) -> NDArray[np.int64]:
                    return index.search(q, K, allowed_ids=allowed, **settings)[1]

                result = measure(run, queries, truth[fence_name])
                rows.append({"n": n, "index": label, "build_s": round(build_s, 2), "fence": fence_name,
                             "path": "selector", **settings, **result})
            if index_type is IndexType.HNSW and settings == search_settings[0]:
                # The exact path of fenced_search: scan the flat storage with the fence's selector.
                for fence_name, sel in fences.items():
                    if sel is None:
                        continue

                    def exact(q: NDArray[np.float32], allowed: NDArray[np.int64] = ids[sel],
                              index: VectorIndex = index) -> NDArray[np.int64]:
                        return index.search(q, K, allowed_ids=allowed, exact=True)[1]

                    rows.append({"n": n, "index": label, "build_s": round(build_s, 2), "fence": fence_name,
                                 "path": "exact", **measure(exact, queries, truth[fence_name])})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated database sizes")
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 vectors")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    console = Console(width=140)
    rows = [row for n in sizes for row in bench_size(n, args.dim, args.queries, args.seed, console)]
    table = Table(title=f"fenced search, dim {args.dim}, k={K}, {faiss.omp_get_max_threads()} threads")
    for col in ("n", "index", "params", "fence", "path", "build_s", "qps", "p50_ms", "p99_ms", "recall@10"):
        table.add_column(col, justify="left" if col in ("index", "params", "fence", "path") else "right")
    for r in rows:
        extra = ", ".join(f"{k}={r[k]}" for k in ("ef_search", "nprobe", "k_factor") if k in r)
        table.add_row(f"{r['n']:,}", r["index"], extra, r["fence"], r["path"], f"{r['build_s']:.2f}",
                      f"{r['qps']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", f"{r['recall_at_10']:.3f}")
    console.print(table)
    if args.out:
        meta = {"dim": args.dim, "queries": args.queries, "seed": args.seed, "k": K,
                "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__,
                "machine": platform.machine(), "python": platform.python_version()}
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
