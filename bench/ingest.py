"""Benchmark witness ingest: concurrent uploads through the API vs direct `minio` put_object, same server, same run.

For each concurrency level (8, 32, 64 clients by default) the same real-size photos (3-6 MB noise JPEGs,
seeded) are first written straight to the S3 server with `put_object`, then uploaded through the API, which
spools and hashes, sniffs, stores with its SHA-256 for the server to check (or reads back, where the server does
not check: the JSON says which), writes a verified manifest and a database row before it acknowledges.
Reported per level: MB/s of each path and their ratio (issue 9's goal: API >= 0.8 x direct), p50/p99
acknowledgement latency, and CPU seconds per MB (API process + S3 server for the API path; S3 server + this
client for the direct path), from psutil. The API runs in its own process so its CPU is measured apart.
With `--rounds N` each level runs direct-then-API N times (new objects each round) and the table shows the
median of each column over the rounds (every round is in the JSON): on a shared machine one round is noise.

`--topologies shared,isolated` runs each round in both CPU topologies, one after the other: *shared* (every
process may run on every core, the default) and *isolated* (every thread of the S3 server pinned to CPU 0, the API
process and this client to CPU 1, for both paths), which keeps the store off the API's core as production does with
MinIO on its own hosts. Each row then also gives how busy each core was (from /proc/stat, so other people's jobs
on the machine count too), to show when the client's core, not the API, is the limit.

    .venv/bin/python -m bench.ingest --uploads 64 --levels 8,32,64 --rounds 3 --out bench-ingest.json   # repo root
    .venv/bin/python -m bench.ingest --uploads 32 --rounds 3 --topologies shared,isolated --out ...  # both, alternating

`--direct-form api` makes the direct path do the API's own two writes per photo without the API (the original into
the versioned, locked evidence bucket, conditional and checksummed, then its manifest): how close the API comes to
the store's own ceiling for that work, rather than to a plain `put_object`.

Each client uploads one photo after another (a closed loop), so the first wave of a level starts together and the
last one drains: with few photos per client that fill and drain is most of the run. `--waves W` sends W photos per
client at every level (W x clients) and, from 5 waves on, adds steady-state columns: MB/s between the first and
the last wave's acknowledgements, when every client has a photo in flight. `--store-write-slots N` sets the API's
`store_write_slots` (0: no limit) and `--api-processes N` serves the API from N processes sharing the port.

    .venv/bin/python -m bench.ingest --waves 6 --levels 8,32,64 --topologies shared,isolated --out ...  # steady

Everything binds to 127.0.0.1 in a temporary folder. The workload (`tests/reliability/workload.py`) is the one the
reliability tests upload, so the benchmark and the no-loss tests measure the same thing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from minio import Minio
from rich.console import Console
from rich.table import Table

from bench.ingest_stack import (
    CpuMeter,
    Topology,
    api_process,
    apply_topology,
    bench_s3_server,
    busy_fractions,
    checked_affinities,
    core_times,
    free_port,
    pin,
    topology_named,
)
from infra.storage.client import build_client
from infra.storage.config import S3Settings
from infra.storage.evidence import manifest_key, store_json, store_original
from infra.storage.integrity import Verification, choose_verification
from tests.reliability.workload import MB, PhotoSet, bench_api_settings, create_event, synthetic_photos, upload_all


def warm_up(*, photos: PhotoSet, base_url: str, event_id: str, direct: DirectWrite) -> None:
    """One photo through each path, so that each bucket's first volume exists before anything is timed."""
    warm = photos.retagged("warm-up")
    direct(warm.tag, 0, warm.photo(0))
    outcome, = upload_all(base_url, event_id, PhotoSet(warm.bases, 1, warm.tag), clients=1, deadline_s=120)
    if outcome.status != 201:
        raise RuntimeError(f"the warm-up upload was not acknowledged: {outcome.status}")


# How the direct path writes one photo: (photo set's tag, index, bytes) -> None.
DirectWrite = Callable[[str, int, bytes], None]


def plain_put(direct: Minio) -> DirectWrite:
    """What issue 9 compares against: `put_object` into a plain bucket (no versioning, no lock, no checksum)."""
    def write(tag: str, index: int, data: bytes) -> None:
        direct.put_object("bench-direct", f"{tag}/{index}.jpg", BytesIO(data), len(data), content_type="image/jpeg")
    return write


def api_form_put(client: Minio, s3: S3Settings, verification: Verification) -> DirectWrite:
    """The API's own two writes per photo, from the API's client but without the API: the original into the
    versioned, locked evidence bucket (`If-None-Match: *`, `x-amz-checksum-sha256`, proven) and a manifest of the
    same size as the API's. The ceiling the store itself sets on the API path."""
    def write(tag: str, index: int, data: bytes) -> None:
        sha256 = hashlib.sha256(data).hexdigest()
        stored = store_original(client, s3.buckets.evidence, stream=BytesIO(data), size=len(data), sha256=sha256,
                                content_type="image/jpeg", verification=verification)
        document: dict[str, object] = {
            "event_id": "bench-direct", "submission_id": tag, "sha256": sha256, "size": len(data),
            "media_type": "image/jpeg", "width": 0, "height": 0, "object_key": stored.key,
            "object_version": stored.version_id, "received_at": datetime.now(UTC).isoformat(),
            "api_version": "bench", "caption": None, "client_filename": None,
        }
        store_json(client, s3.buckets.evidence, manifest_key(event_id="bench-direct", submission_id=tag, sha256=sha256),
                   document, verification=verification)
    return write


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_level(
    *, clients: int, photos: PhotoSet, base_url: str, event_id: str, direct: DirectWrite, meter: CpuMeter,
) -> dict[str, Any]:
    megabytes = photos.total_bytes / MB
    latencies: list[float] = []

    direct_done: list[Completion] = []
    api_done: list[Completion] = []

    def put(index: int) -> None:
        data = photos.photo(index)
        started = time.perf_counter()
        direct(photos.tag, index, data)
        finished = time.perf_counter()
        latencies.append(finished - started)
        direct_done.append((finished, len(data)))

    before, cores, started = meter.read(), core_times(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(put, range(len(photos))))
    direct_s, after, direct_busy = time.perf_counter() - started, meter.read(), busy_fractions(cores, core_times())
    direct_cpu = {name: after[name] - before[name] for name in after}

    api_photos = photos.retagged(f"{photos.tag}-api")
    sizes = {index: len(api_photos.photo(index)) for index in range(len(api_photos))}
    before, cores, started = meter.read(), core_times(), time.perf_counter()
    outcomes = upload_all(base_url, event_id, api_photos, clients=clients, deadline_s=600,
                          on_result=lambda outcome: api_done.append((time.perf_counter(), sizes[outcome.index])))
    api_s, after, api_busy = time.perf_counter() - started, meter.read(), busy_fractions(cores, core_times())
    api_cpu = {name: after[name] - before[name] for name in after}
    acked = [o for o in outcomes if o.status == 201]
    if len(acked) != len(outcomes):
        raise RuntimeError(f"{len(outcomes) - len(acked)} uploads were not acknowledged: "
                           f"{sorted({str(o.status) for o in outcomes})}")
    api_latencies = [o.latency_s for o in acked]
    return {
        "clients": clients,
        "photos": len(photos),
        "megabytes": round(megabytes, 1),
        "direct_mb_s": megabytes / direct_s,
        "api_mb_s": megabytes / api_s,
        "ratio": direct_s / api_s,
        # The same, while every client is busy: the first and last waves (filling and draining) left out.
        **steady_columns(direct_done, api_done, clients),
        "direct_p50_s": _percentile(latencies, 50),
        "direct_p99_s": _percentile(latencies, 99),
        "api_p50_s": _percentile(api_latencies, 50),
        "api_p99_s": _percentile(api_latencies, 99),
        "api_retries": sum(len(o.retryable_failures) for o in outcomes),
        "api_cpu_s_per_mb": (api_cpu["api"] + api_cpu["s3"]) / megabytes,
        "direct_cpu_s_per_mb": (direct_cpu["s3"] + direct_cpu["client"]) / megabytes,
        "cpu_s": {"direct": direct_cpu, "api": api_cpu},
        # CPU ms per MB of each process on each path (all threads; the direct path's "api" is the idle API)
        **{f"api_path_{name}_ms_mb": 1000 * api_cpu[name] / megabytes for name in api_cpu},
        **{f"direct_{name}_ms_mb": 1000 * direct_cpu[name] / megabytes for name in direct_cpu},
        # cores each process kept busy on average (CPU seconds per second of the path's run)
        **{f"api_path_{name}_cores": api_cpu[name] / api_s for name in api_cpu},
        **{f"direct_{name}_cores": direct_cpu[name] / direct_s for name in direct_cpu},
        **{f"api_path_core{index}_busy": busy for index, busy in enumerate(api_busy)},
        **{f"direct_core{index}_busy": busy for index, busy in enumerate(direct_busy)},
    }


# When an upload was acknowledged (perf_counter seconds) and its size in bytes.
Completion = tuple[float, int]
STEADY_MIN_WAVES = 5


def steady_mb_s(completions: Sequence[Completion], clients: int) -> float | None:
    """MB/s between the `clients`-th and the last-but-`clients` acknowledgement, or None with fewer than 5 waves
    (`clients` photos each: with fewer, the window between is too short to say anything).

    With `clients` closed-loop clients the first wave starts together (all bodies arrive at once, nothing is
    stored yet) and the last one drains with fewer and fewer clients: a run of one or two waves measures that fill
    and drain, not throughput. Between those two acknowledgements every client has a photo in flight."""
    if len(completions) < STEADY_MIN_WAVES * clients:
        return None
    ordered = sorted(completions)
    first, last = ordered[clients - 1][0], ordered[len(ordered) - clients - 1][0]
    carried = sum(size for _, size in ordered[clients:len(ordered) - clients])
    return carried / MB / (last - first) if last > first else None


def steady_columns(direct: Sequence[Completion], api: Sequence[Completion], clients: int) -> dict[str, float]:
    direct_mb_s, api_mb_s = steady_mb_s(direct, clients), steady_mb_s(api, clients)
    if direct_mb_s is None or api_mb_s is None:
        return {}
    return {"direct_steady_mb_s": direct_mb_s, "api_steady_mb_s": api_mb_s, "steady_ratio": api_mb_s / direct_mb_s}


def median_of_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each numeric column's median over the rounds of one level; the rounds themselves are kept under "rounds"."""
    summary: dict[str, Any] = {}
    for name, value in rounds[0].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            summary[name] = float(np.median([r[name] for r in rounds]))
    summary["clients"], summary["photos"] = rounds[0]["clients"], rounds[0]["photos"]
    summary["api_retries"] = sum(r["api_retries"] for r in rounds)
    summary["rounds"] = rounds
    return summary


def run_levels(
    *, levels: list[int], rounds: int, topologies: list[Topology], photos: PhotoSet, base_url: str, event_id: str,
    direct: DirectWrite, meter: CpuMeter, s3_pid: int, api_pid: int, console: Console, waves: int | None = None,
) -> list[dict[str, Any]]:
    """Per level, `rounds` rounds; within a round each topology in turn (direct then API in each), so the
    topologies alternate and share the machine's drift. One summary per (level, topology). With `waves`, a level
    of N clients sends `waves` x N photos instead of `photos.count`."""
    results: list[dict[str, Any]] = []
    for clients in levels:
        level_photos = photos if waves is None else PhotoSet(photos.bases, waves * clients, photos.tag)
        done: dict[str, list[dict[str, Any]]] = {topology.name: [] for topology in topologies}
        for round_index in range(rounds):
            for topology in topologies:
                console.print(f"{clients} clients, round {round_index + 1}/{rounds}, {topology.name} ...")
                apply_topology(topology, s3_pid=s3_pid, api_pid=api_pid)
                result = run_level(clients=clients,
                                   photos=level_photos.retagged(f"c{clients}r{round_index}{topology.name}"),
                                   base_url=base_url, event_id=event_id, direct=direct, meter=meter)
                result["affinity"] = checked_affinities(topology, s3_pid=s3_pid, api_pid=api_pid)
                done[topology.name].append(result)
        results.extend({"topology": name, **median_of_rounds(runs)} for name, runs in done.items())
    return results


def print_table(console: Console, results: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("topology", "clients", "MB", "direct MB/s", "API MB/s", "ratio", "ratio per round",
                   "steady ratio (per round)",
                   "API p50 / p99 s", "direct p50 / p99 s", "API path ms/MB api / s3 / client",
                   "direct ms/MB s3 / client", "cores busy API path", "cores busy direct", "retries"):
        table.add_column(column, justify="right")
    for r in results:
        cores = sorted(int(name[len("api_path_core"):-len("_busy")]) for name in r if name.startswith("api_path_core"))
        table.add_row(
            r["topology"], str(r["clients"]), f"{r['megabytes']:.0f}", f"{r['direct_mb_s']:.1f}",
            f"{r['api_mb_s']:.1f}", f"{r['ratio']:.2f}", " ".join(f"{x['ratio']:.2f}" for x in r["rounds"]),
            (f"{r['steady_ratio']:.2f} (" + " ".join(f"{x['steady_ratio']:.2f}" for x in r["rounds"]) + ")"
             if "steady_ratio" in r else "-"),
            f"{r['api_p50_s']:.2f} / {r['api_p99_s']:.2f}", f"{r['direct_p50_s']:.2f} / {r['direct_p99_s']:.2f}",
            f"{r['api_path_api_ms_mb']:.1f} / {r['api_path_s3_ms_mb']:.1f} / {r['api_path_client_ms_mb']:.1f}",
            f"{r['direct_s3_ms_mb']:.1f} / {r['direct_client_ms_mb']:.1f}",
            " ".join(f"{r[f'api_path_core{c}_busy']:.2f}" for c in cores),
            " ".join(f"{r[f'direct_core{c}_busy']:.2f}" for c in cores), str(r["api_retries"]),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=128, help="photos per level and path")
    parser.add_argument("--waves", type=int, help=f"instead of --uploads: WAVES x clients photos per level and "
                        f"path, so every level runs as many rounds of its clients (>= {STEADY_MIN_WAVES} for the "
                        f"steady-state columns at every level)")
    parser.add_argument("--levels", default="8,32,64", help="concurrent clients, comma-separated")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=1, help="direct-then-API rounds per level; medians shown")
    parser.add_argument("--topologies", default="shared",
                        help="comma-separated, run in turn within each round: shared (default), isolated "
                             "(S3 server on one core, the API and the clients on another)")
    parser.add_argument("--direct-form", choices=("plain", "api"), default="plain",
                        help="the direct path: plain put_object into a plain bucket (issue 9's baseline, default), "
                             "or the API's own writes (original into the locked evidence bucket + manifest) "
                             "without the API")
    parser.add_argument("--store-write-slots", type=int,
                        help="the API's `store_write_slots` (0: no limit); default: the API's own default")
    parser.add_argument("--api-processes", type=int, default=1,
                        help="API processes sharing the port (SO_REUSEPORT), as a multi-worker deployment runs")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]
    available = frozenset(os.sched_getaffinity(0))
    topologies = [topology_named(name.strip(), available) for name in args.topologies.split(",")]

    console = Console(width=230)  # the table, whole, also when piped to a log
    with tempfile.TemporaryDirectory(prefix="witness-bench-ingest-") as scratch:
        root = Path(scratch)
        with bench_s3_server(root, max_clients=max(levels)) as (s3, server, direct):
            # What the API will find when it asks the same server at start-up (recorded with the results).
            verification = choose_verification(direct, s3.buckets.derived)
            settings = bench_api_settings(s3, root / "api", free_port())
            if args.store_write_slots is not None:
                settings = settings.model_copy(update={"store_write_slots": args.store_write_slots})
            event_id = create_event(settings)
            console.print(f"generating {args.uploads} photos (3-6 MB noise JPEGs, seed {args.seed})")
            photos = synthetic_photos(args.uploads, seed=args.seed)
            with api_process(settings, args.api_processes) as api_pid:
                meter = CpuMeter({"api": api_pid, "s3": server.pid, "client": os.getpid()},
                                 with_descendants=frozenset({"api"}))
                base_url = f"http://{settings.host}:{settings.port}"
                direct_write = plain_put(direct) if args.direct_form == "plain" else api_form_put(
                    build_client(s3), s3, verification)
                warm_up(photos=photos, base_url=base_url, event_id=event_id, direct=direct_write)
                try:
                    results = run_levels(
                        levels=levels, rounds=args.rounds, topologies=topologies, photos=photos,
                        base_url=base_url, event_id=event_id, direct=direct_write,
                        meter=meter, s3_pid=server.pid, api_pid=api_pid, console=console, waves=args.waves,
                    )
                finally:
                    pin(os.getpid(), available, children=False)

    per_level = f"{args.waves} x clients" if args.waves else str(args.uploads)
    print_table(console, results, f"Ingest: API vs direct put_object ({per_level} photos per level and path, "
                                  f"median of {args.rounds})")
    report = {
        "benchmark": "ingest",
        "command": "python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1)},
        "rounds": args.rounds,
        "topologies": {t.name: {"storage_cpus": sorted(t.storage_cpus), "service_cpus": sorted(t.service_cpus)}
                       for t in topologies},
        "api_write_verification": str(verification),
        "direct_form": args.direct_form,
        "api_processes": args.api_processes,
        "store_write_slots": settings.store_write_slots,
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
