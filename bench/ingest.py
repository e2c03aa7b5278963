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

    .venv/bin/python -m bench.ingest --uploads 64 --levels 8,32,64 --rounds 3 --out bench-ingest.json   # repo root

Everything binds to 127.0.0.1 in a temporary folder. The workload (`tests/reliability/workload.py`) is the one the
reliability tests upload, so the benchmark and the no-loss tests measure the same thing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from io import BytesIO
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import urllib3
from minio import Minio
from rich.console import Console
from rich.table import Table

from infra import s3server
from infra.storage.client import ensure_buckets
from infra.storage.config import S3Settings
from infra.storage.integrity import choose_verification
from ingest_api.settings import ApiSettings
from tests.reliability.workload import MB, PhotoSet, bench_api_settings, create_event, synthetic_photos, upload_all


def _serve(settings: ApiSettings, stop: EventType) -> None:
    from infra.local_stack import api_in_background

    with api_in_background(settings):
        stop.wait()


@contextmanager
def api_process(settings: ApiSettings) -> Iterator[int]:
    """Serve the API in a child process (so its CPU is measured on its own); yields the child's pid."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(target=_serve, args=(settings, stop), name="witness-bench-api")
    process.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://{settings.host}:{settings.port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not process.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the benchmark API did not start")
            time.sleep(0.2)
        assert process.pid is not None
        yield process.pid
    finally:
        stop.set()
        process.join(30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CpuMeter:
    """CPU seconds (user + system, children included) of a set of processes between two readings."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}

    def read(self) -> dict[str, float]:
        readings = {}
        for name, process in self.processes.items():
            times = process.cpu_times()
            readings[name] = times.user + times.system + times.children_user + times.children_system
        return readings


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_level(
    *, clients: int, photos: PhotoSet, base_url: str, event_id: str, direct: Minio, meter: CpuMeter,
) -> dict[str, Any]:
    megabytes = photos.total_bytes / MB
    latencies: list[float] = []

    def put(index: int) -> None:
        data = photos.photo(index)
        started = time.perf_counter()
        direct.put_object("bench-direct", f"{photos.tag}/{index}.jpg", BytesIO(data), len(data),
                          content_type="image/jpeg")
        latencies.append(time.perf_counter() - started)

    before, started = meter.read(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(put, range(len(photos))))
    direct_s, after = time.perf_counter() - started, meter.read()
    direct_cpu = {name: after[name] - before[name] for name in after}

    api_photos = photos.retagged(f"{photos.tag}-api")
    before, started = meter.read(), time.perf_counter()
    outcomes = upload_all(base_url, event_id, api_photos, clients=clients, deadline_s=600)
    api_s, after = time.perf_counter() - started, meter.read()
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
        "direct_p50_s": _percentile(latencies, 50),
        "direct_p99_s": _percentile(latencies, 99),
        "api_p50_s": _percentile(api_latencies, 50),
        "api_p99_s": _percentile(api_latencies, 99),
        "api_retries": sum(len(o.retryable_failures) for o in outcomes),
        "api_cpu_s_per_mb": (api_cpu["api"] + api_cpu["s3"]) / megabytes,
        "direct_cpu_s_per_mb": (direct_cpu["s3"] + direct_cpu["client"]) / megabytes,
        "cpu_s": {"direct": direct_cpu, "api": api_cpu},
    }


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=128, help="photos per level and path")
    parser.add_argument("--levels", default="8,32,64", help="concurrent clients, comma-separated")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=1, help="direct-then-API rounds per level; medians shown")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    levels = [int(level) for level in args.levels.split(",")]

    console = Console(width=170)  # the table, whole, also when piped to a log
    with tempfile.TemporaryDirectory(prefix="witness-bench-ingest-") as scratch:
        root = Path(scratch)
        port = s3server.find_free_port_base()
        s3 = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
        server = s3server.start(root / "s3", s3, s3_port=port)
        try:
            direct = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key.get_secret_value(),
                           secure=False, http_client=urllib3.PoolManager(maxsize=max(levels), retries=False))
            ensure_buckets(direct, s3)
            if not direct.bucket_exists("bench-direct"):
                direct.make_bucket("bench-direct")
            # What the API will find when it asks the same server at start-up (recorded with the results).
            verification = choose_verification(direct, s3.buckets.derived)
            settings = bench_api_settings(s3, root / "api", _free_port())
            event_id = create_event(settings)
            console.print(f"generating {args.uploads} photos (3-6 MB noise JPEGs, seed {args.seed})")
            photos = synthetic_photos(args.uploads, seed=args.seed)
            with api_process(settings) as api_pid:
                meter = CpuMeter({"api": api_pid, "s3": server.pid, "client": os.getpid()})
                base_url = f"http://{settings.host}:{settings.port}"
                results = []
                for clients in levels:
                    rounds = []
                    for round_index in range(args.rounds):
                        console.print(f"{clients} clients, round {round_index + 1}/{args.rounds} ...")
                        rounds.append(run_level(clients=clients, photos=photos.retagged(f"c{clients}r{round_index}"),
                                                base_url=base_url, event_id=event_id, direct=direct, meter=meter))
                    results.append(median_of_rounds(rounds))
        finally:
            s3server.stop(root / "s3")

    title = f"Ingest: API vs direct put_object ({args.uploads} photos per level and path, median of {args.rounds})"
    table = Table(title=title)
    for column in ("clients", "MB", "direct MB/s", "API MB/s", "ratio", "API p50 s", "API p99 s",
                   "direct p50 s", "direct p99 s", "API CPU s/MB", "direct CPU s/MB", "retries"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(str(r["clients"]), f"{r['megabytes']:.0f}", f"{r['direct_mb_s']:.1f}", f"{r['api_mb_s']:.1f}",
                      f"{r['ratio']:.2f}", f"{r['api_p50_s']:.2f}", f"{r['api_p99_s']:.2f}",
                      f"{r['direct_p50_s']:.2f}", f"{r['direct_p99_s']:.2f}", f"{r['api_cpu_s_per_mb']:.3f}",
                      f"{r['direct_cpu_s_per_mb']:.3f}", str(r["api_retries"]))
    console.print(table)
    report = {
        "benchmark": "ingest",
        "command": "python -m bench.ingest " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": psutil.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1e9, 1)},
        "rounds": args.rounds,
        "api_write_verification": str(verification),
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
