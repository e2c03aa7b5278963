"""Benchmark the indexers: build time, memory, single-query latency (p50/p99), QPS and recall@10 vs exact.

Index types Flat / HNSW (several efSearch) / IVF-PQ + refine / Certified (8-bit codes + exact re-rank over a
Flat index, `indexers.certified`), unfenced and fenced (fences keeping 0.1 %, 1 % and 10 % of the vectors:
random subsets, the worst case for memory locality), through the FAISS selector, through the exact scan of the
subset and through the certified scan. `--end-to-end` adds `fenced_search` with a real place + time `Fence`
over synthetic metadata (fence mask, id mapping and search together), first with the rows in random order, then
in the capture-time layout order versions are written in (`indexers.layout`). Seeded clustered unit vectors; queries
run one at a time, as investigators issue them, so QPS = 1 / mean latency on this machine's threads.

Memory per index type: `serialized` is the size of `faiss.serialize_index` of the index (what a version file
holds); `rss_delta` is the process RSS growth across the build (what serving it costs, allocator slack
included). Certified codes are derived at load, never serialized: their row gives the codes' own bytes and the
RSS growth of building them, on top of the Flat index they re-rank from.

    .venv/bin/python bench/search.py --sizes 10000,100000 --out bench-search.json
    .venv/bin/python bench/search.py --sizes 1000000 --dim 512 --queries 100 --end-to-end --out bench-1m.json
    .venv/bin/python bench/search.py --sizes 1000000 --dim 512 --index-types flat,certified   # minutes, not 15
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from indexers.fence import Circle, Fence, TimeWindow
from indexers.metadata import MetadataTable
from indexers.search import fenced_search
from indexers.vector_index import IndexParams, IndexType, SearchPath, VectorIndex

K = 10
INDEX_TYPES = ("flat", "hnsw", "ivfpq", "certified")
SearchFn = Callable[[NDArray[np.float32]], NDArray[np.int64]]


def unit_vectors(n: int, d: int, rng: np.random.Generator, centres: NDArray[np.float32]) -> NDArray[np.float32]:
    """`(n, d) float32` around `centres`, generated in float32 chunks (1M x 512 without 4 GB of float64)."""
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        x = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.standard_normal((m, d), dtype=np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


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


def configs(selected: tuple[str, ...]) -> list[tuple[str, IndexType, SearchPath, list[dict[str, Any]]]]:
    """(label, index type, search path, search settings) for the selected index types."""
    every: dict[str, tuple[str, IndexType, SearchPath, list[dict[str, Any]]]] = {
        "flat": ("flat", IndexType.FLAT, SearchPath.APPROXIMATE, [{}]),
        "hnsw": ("hnsw M32", IndexType.HNSW, SearchPath.APPROXIMATE, [{"ef_search": ef} for ef in (64, 128, 256)]),
        "ivfpq": ("ivfpq+refine", IndexType.IVFPQ_REFINE, SearchPath.APPROXIMATE,
                  [{"nprobe": p, "k_factor": 8.0} for p in (16, 64)]),
        "certified": ("certified (sq8 + exact re-rank)", IndexType.FLAT, SearchPath.CERTIFIED, [{}]),
    }
    return [every[name] for name in selected]


def index_memory(index: VectorIndex, path: SearchPath) -> int:
    """Bytes of the structure the path adds: the serialized FAISS index, or the certified codes."""
    if path is SearchPath.CERTIFIED:
        return index.codes().nbytes
    return len(faiss.serialize_index(index.index))


def synthetic_meta(ids: NDArray[np.int64], rng: np.random.Generator) -> MetadataTable:
    """Detections spread uniformly over ~45 x 55 km and one year, in random order (no layout advantage)."""
    n = len(ids)
    t0 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp())
    none = np.full(n, None, dtype=object)
    return MetadataTable(
        ids=ids, lat=51.3 + 0.4 * rng.random(n), lon=-0.5 + 0.8 * rng.random(n),
        position_trusted=np.ones(n, bool), taken_at=t0 + rng.integers(0, 365 * 86_400, n),
        time_known=np.ones(n, bool), time_trusted=np.ones(n, bool), detection_id=none, photo_id=none,
        event_id=none, kind=np.full(n, "bench", dtype=object), attributes=none, box=np.zeros((n, 4), np.float32))


def place_time_fence(meta: MetadataTable, fraction: float) -> Fence:
    """A circle around central London and the first half of 2025, the radius bisected to keep `fraction`."""
    window = TimeWindow(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC) + timedelta(days=182))
    low, high = 10.0, 60_000.0
    for _ in range(30):
        radius = (low + high) / 2
        fence = Fence(area=Circle(51.5, -0.1, radius), window=window, include_unplaced=False, include_untimed=False)
        low, high = (radius, high) if fence.mask(meta).mean() < fraction else (low, radius)
    return Fence(area=Circle(51.5, -0.1, high), window=window, include_unplaced=False, include_untimed=False)


def bench_size(n: int, d: int, nq: int, seed: int, selected: tuple[str, ...], fractions: list[float],
               end_to_end: bool, console: Console) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1024, d)).astype(np.float32)
    db, queries = unit_vectors(n, d, rng, centres), unit_vectors(nq, d, rng, centres)
    ids = rng.choice(2**62, size=n, replace=False).astype(np.int64)
    fences = {"none": None, **{f"{f * 100:g}%": np.sort(rng.choice(n, int(n * f), replace=False)) for f in fractions}}
    truth = {name: exact_ids(db if sel is None else db[sel], ids if sel is None else ids[sel], queries)
             for name, sel in fences.items()}
    rows: list[dict[str, Any]] = []
    params = IndexParams(hnsw_m=32, hnsw_ef_construction=100)
    for label, index_type, path, search_settings in configs(selected):
        rss_before, start = rss_bytes(), time.perf_counter()
        index = VectorIndex.build("bench", ids, db, index_type=index_type, params=params)
        if path is SearchPath.CERTIFIED:  # time and memory of the codes only, on top of the Flat index
            rss_before, start = rss_bytes(), time.perf_counter()
            index.codes()
        build_s, rss_delta = time.perf_counter() - start, rss_bytes() - rss_before
        common = {"n": n, "index": label, "build_s": round(build_s, 2), "rss_delta_mb": round(rss_delta / 2**20),
                  "memory_mb": round(index_memory(index, path) / 2**20)}
        console.log(f"n={n:,} {label}: built in {build_s:.1f} s, {common['memory_mb']} MB, "
                    f"RSS +{common['rss_delta_mb']} MB")
        for settings in search_settings:
            for fence_name, sel in fences.items():
                allowed = None if sel is None else ids[sel]

                def run(q: NDArray[np.float32], allowed: NDArray[np.int64] | None = allowed, index: VectorIndex = index,
                        settings: dict[str, Any] = settings, path: SearchPath = path) -> NDArray[np.int64]:
                    return index.search(q, K, allowed_ids=allowed, path=path, **settings)[1]

                rows.append({**common, "fence": fence_name, "path": path.value, **settings,
                             **measure(run, queries, truth[fence_name])})
        if index_type is IndexType.FLAT and path is SearchPath.APPROXIMATE:
            # The EXACT path of fenced_search: scan the float32 storage with the fence's selector.
            for fence_name, sel in fences.items():
                if sel is not None:
                    def exact(q: NDArray[np.float32], allowed: NDArray[np.int64] = ids[sel],
                              index: VectorIndex = index) -> NDArray[np.int64]:
                        return index.search(q, K, allowed_ids=allowed, path=SearchPath.EXACT)[1]

                    rows.append({**common, "index": "exact scan of the subset", "fence": fence_name,
                                 "path": "exact", **measure(exact, queries, truth[fence_name])})
        if end_to_end and path is SearchPath.CERTIFIED:
            rows += bench_end_to_end(index, db, ids, queries, fractions, rng, common, console)
        del index
    return rows


def bench_end_to_end(index: VectorIndex, db: NDArray[np.float32], ids: NDArray[np.int64],
                     queries: NDArray[np.float32], fractions: list[float], rng: np.random.Generator,
                     common: dict[str, Any], console: Console) -> list[dict[str, Any]]:
    """`fenced_search` with place + time fences: mask, id mapping, path choice and search, as the service runs.

    First with the metadata rows in random order (a version without locality: the fence's rows are scattered),
    then in the layout order a version is written in (`indexers.layout`: by capture time, place within time
    blocks), the index's vectors moved to match as `update_kind_index` does.
    """
    unordered = synthetic_meta(ids, rng)
    laid_out = unordered.reordered(unordered.layout_order())
    rows = []
    for label, meta in (("unordered rows", unordered), ("layout order", laid_out)):
        start = time.perf_counter()
        index.reorder(meta.ids)
        index.warm().positions_of(meta.ids)  # what KindIndex.warm() does before serving
        meta.warm()
        console.log(f"end-to-end, {label}: reordered and warmed in {time.perf_counter() - start:.1f} s")
        variants: list[tuple[str, dict[str, Any]]] = [(label, {})]
        if meta is laid_out:  # where the default path choice stands against the other exact path
            variants += [(f"{label}, EXACT forced", {"exact_below": len(ids)}),
                         (f"{label}, CERTIFIED forced", {"exact_below": 0, "certified_fraction_below": 1.0})]
        for name, limits in variants:
            for fraction in fractions:
                rows.append(_end_to_end_row(index, meta, db, ids, queries, fraction, name, limits, common, console))
    return rows


def _end_to_end_row(index: VectorIndex, meta: MetadataTable, db: NDArray[np.float32], ids: NDArray[np.int64],
                    queries: NDArray[np.float32], fraction: float, label: str, limits: dict[str, Any],
                    common: dict[str, Any], console: Console) -> dict[str, Any]:
    fence = place_time_fence(meta, fraction)
    inside = np.zeros(len(ids), bool)
    inside[np.isin(ids, meta.ids[fence.mask(meta)])] = True  # db and ids are in generation order
    truth = exact_ids(db[inside], ids[inside], queries)
    mask_ms = np.median([_timed(partial(fence.mask, meta)) for _ in range(20)])
    paths: list[str] = []
    scans: list[int] = []

    def run(q: NDArray[np.float32], fence: Fence = fence) -> NDArray[np.int64]:
        result = fenced_search(index, meta, q, K, fence=fence, **limits)
        paths.append(result.path.value)
        scans.append(result.certified.scans if result.certified else 0)
        return result.ids

    result = measure(run, queries, truth)
    console.log(f"end-to-end {label} {fraction:.1%}: kept {inside.mean():.3%}, mask {mask_ms:.1f} ms, {result}")
    return {**common, "index": f"fenced_search (place+time), {label}", "fence": f"{fraction * 100:g}%",
            "path": "/".join(sorted(set(paths))), "kept": round(float(inside.mean()), 5),
            "mask_ms": round(float(mask_ms), 2), "code_scans": round(float(np.mean(scans)), 2), **result}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated database sizes")
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 vectors")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index-types", default=",".join(INDEX_TYPES),
                        help=f"comma-separated subset of {', '.join(INDEX_TYPES)}")
    parser.add_argument("--fractions", default="0.001,0.01,0.1", help="fence sizes as fractions of n")
    parser.add_argument("--end-to-end", action="store_true",
                        help="also time fenced_search with place + time fences (needs 'certified')")
    parser.add_argument("--out", type=Path, help="write results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([1_000_000] if args.million else [])
    selected = tuple(name for name in args.index_types.split(",") if name)
    unknown = set(selected) - set(INDEX_TYPES)
    if unknown:
        parser.error(f"--index-types: unknown {sorted(unknown)}; choose from {', '.join(INDEX_TYPES)}")
    fractions = [float(f) for f in args.fractions.split(",") if f]
    console = Console(width=160)
    load_at_start = os.getloadavg()
    rows = [row for n in sizes
            for row in bench_size(n, args.dim, args.queries, args.seed, selected, fractions, args.end_to_end, console)]
    table = Table(title=f"fenced search, dim {args.dim}, k={K}, {faiss.omp_get_max_threads()} threads")
    for col in ("n", "index", "params", "fence", "path", "build_s", "memory_mb", "rss_delta_mb", "qps", "p50_ms",
                "p99_ms", "recall@10"):
        table.add_column(col, justify="left" if col in ("index", "params", "fence", "path") else "right")
    for r in rows:
        extra = ", ".join(f"{k}={r[k]}" for k in ("ef_search", "nprobe", "k_factor", "kept", "mask_ms", "code_scans")
                          if k in r)
        table.add_row(f"{r['n']:,}", r["index"], extra, r["fence"], r["path"], f"{r['build_s']:.2f}",
                      str(r["memory_mb"]), str(r["rss_delta_mb"]), f"{r['qps']:.0f}", f"{r['p50_ms']:.2f}",
                      f"{r['p99_ms']:.2f}", f"{r['recall_at_10']:.3f}")
    console.print(table)
    if args.out:
        meta = {"dim": args.dim, "queries": args.queries, "seed": args.seed, "k": K, "index_types": selected,
                "threads": faiss.omp_get_max_threads(), "faiss": faiss.__version__,
                "machine": platform.machine(), "python": platform.python_version(),
                "load_average_start": [round(x, 2) for x in load_at_start],
                "load_average_end": [round(x, 2) for x in os.getloadavg()]}
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
        tmp.replace(args.out)
    inexact = [r for r in rows if r["path"] in ("exact", "certified", "certified/exact", "exact/certified")
               and r["recall_at_10"] < 1.0]
    if inexact:
        raise SystemExit(f"recall below 1.0 on an exact path: {inexact}")


if __name__ == "__main__":
    main()
