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
import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import S3Settings
from infra.storage.evidence import manifest_key, store_json, store_original
from infra.storage.integrity import Verification, choose_verification
from ingest_api.settings import ApiSettings
from tests.reliability.workload import MB, PhotoSet, bench_api_settings, create_event, synthetic_photos, upload_all


def _serve(settings: ApiSettings, stop: EventType, processes: int) -> None:
    if processes == 1:
        from infra.local_stack import api_in_background

        with api_in_background(settings):
            stop.wait()
        return
    # Several API processes on one port, as `gunicorn --reuse-port` runs them: each has its own listening socket
    # with SO_REUSEPORT, so the kernel spreads the clients' connections over the processes evenly, where one
    # shared socket lets whichever event loop wakes first accept most of a burst of connections.
    context = multiprocessing.get_context("fork")  # this process has no threads yet: forking it is safe
    workers = [context.Process(target=_serve_reusing_port, args=(settings, stop), name=f"witness-bench-api-{index}")
               for index in range(processes)]
    for worker in workers:
        worker.start()
    stop.wait()
    for worker in workers:
        worker.join(30)


def _serve_reusing_port(settings: ApiSettings, stop: EventType) -> None:
    import threading

    import uvicorn

    from ingest_api.app import create_app

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((settings.host, settings.port))
    server = uvicorn.Server(uvicorn.Config(create_app(settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    stop.wait()
    server.should_exit = True
    thread.join(15)


@contextmanager
def api_process(settings: ApiSettings, processes: int = 1) -> Iterator[int]:
    """Serve the API in a child process (so its CPU is measured on its own), or in `processes` grandchildren of
    it sharing the port; yields the child's pid (its descendants are counted and pinned with it)."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(target=_serve, args=(settings, stop, processes), name="witness-bench-api")
    process.start()
    try:
        wait_healthy(f"http://{settings.host}:{settings.port}", process)
        assert process.pid is not None
        if processes > 1:
            wait_listening(process.pid, settings.port, processes)
        yield process.pid
    finally:
        stop.set()
        process.join(30)


def wait_listening(pid: int, port: int, processes: int, timeout_s: float = 60) -> None:
    """Return once `processes` descendants of `pid` listen on `port`: uvicorn listens only after the app's
    start-up, so from then on every new connection reaches a ready API process."""
    deadline = time.monotonic() + timeout_s
    while True:
        listening = 0
        for child in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                listening += any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
                                 for c in child.net_connections(kind="tcp"))
        if listening >= processes:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {listening} of {processes} API processes listen on port {port}")
        time.sleep(0.2)


def wait_healthy(base_url: str, process: multiprocessing.process.BaseProcess, timeout_s: float = 60) -> None:
    """Return once the API in `process` answers /healthz; RuntimeError if it dies or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not process.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the benchmark API did not start")
        time.sleep(0.2)


@contextmanager
def bench_s3_server(root: Path, *, max_clients: int) -> Iterator[tuple[S3Settings, s3server.LocalS3Server, Minio]]:
    """A throw-away local S3 server under `root`, its settings, and a direct client with a connection per client
    and no transport retries (a retried PUT would be counted twice); the project's buckets and `bench-direct`
    exist. The server is stopped on exit."""
    port = s3server.find_free_port_base()
    s3 = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
    # SeaweedFS stalls a collection's writes for ~1.3 s whenever it grows a volume (its first write, then every
    # GiB with the local server's 1 GiB volumes); one such stall in a round of a few seconds halves or doubles its
    # ratio. Volumes larger than a whole run stored in one bucket, and a write to each bucket before the first
    # round (`warm_up`), keep growth out of the measured rounds. MinIO has no such volumes.
    server = s3server.start(root / "s3", s3, s3_port=port, volume_size_limit_mb=BENCH_VOLUME_LIMIT_MB)
    try:
        direct = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key.get_secret_value(),
                       secure=False, http_client=urllib3.PoolManager(maxsize=max_clients, retries=False))
        ensure_buckets(direct, s3)
        if not direct.bucket_exists("bench-direct"):
            direct.make_bucket("bench-direct")
        yield s3, server, direct
    finally:
        s3server.stop(root / "s3")


BENCH_VOLUME_LIMIT_MB = 30_000


def warm_up(*, photos: PhotoSet, base_url: str, event_id: str, direct: DirectWrite) -> None:
    """One photo through each path, so that each bucket's first volume exists before anything is timed."""
    warm = photos.retagged("warm-up")
    direct(warm.tag, 0, warm.photo(0))
    outcome, = upload_all(base_url, event_id, PhotoSet(warm.bases, 1, warm.tag), clients=1, deadline_s=120)
    if outcome.status != 201:
        raise RuntimeError(f"the warm-up upload was not acknowledged: {outcome.status}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class CpuMeter:
    """CPU seconds (user + system) of a set of processes between two readings: each process with its ended
    children, and for the names in `with_descendants` its live descendants too (the API's worker processes)."""

    def __init__(self, pids: dict[str, int], *, with_descendants: frozenset[str] = frozenset()) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.with_descendants = with_descendants

    def read(self) -> dict[str, float]:
        readings = {}
        for name, process in self.processes.items():
            members = [process, *(process.children(recursive=True) if name in self.with_descendants else [])]
            readings[name] = sum(_cpu_seconds(member) for member in members)
        return readings


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system + times.children_user + times.children_system


def core_times() -> list[tuple[float, float]]:
    """(busy, total) CPU seconds of each core since boot, from /proc/stat: every process counts, ours or not."""
    readings = []
    for core in psutil.cpu_times(percpu=True):
        total = sum(core)
        readings.append((total - core.idle - getattr(core, "iowait", 0.0), total))
    return readings


def busy_fractions(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> list[float]:
    """How busy each core was between two `core_times()` readings (0 to 1)."""
    return [(b1 - b0) / max(t1 - t0, 1e-9) for (b0, t0), (b1, t1) in zip(before, after, strict=True)]


# ---- CPU topology -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """Which cores the S3 server may run on, and which the API process and this client may run on."""

    name: str
    storage_cpus: frozenset[int]
    service_cpus: frozenset[int]


def topology_named(name: str, available: frozenset[int]) -> Topology:
    """`shared`: everything on every core we may use; `isolated`: the S3 server on the first core, the rest on the
    second, so the store never takes the API's cycles (and the API's path is measured as if MinIO were remote)."""
    if name == "shared":
        return Topology(name, available, available)
    if name == "isolated":
        if len(available) < 2:
            raise SystemExit(f"--topologies isolated needs two cores; this process may use {sorted(available)}")
        first, second, *_ = sorted(available)
        return Topology(name, frozenset({first}), frozenset({second}))
    raise SystemExit(f"--topologies: unknown topology {name!r} (known: shared, isolated)")


def thread_ids(pid: int, *, children: bool) -> set[int]:
    """Every thread of `pid`, and of its descendants with `children` (Linux keeps a CPU affinity per thread)."""
    ids: set[int] = set()
    root = psutil.Process(pid)
    for process in [root, *(root.children(recursive=True) if children else [])]:
        try:
            ids.update(int(tid) for tid in os.listdir(f"/proc/{process.pid}/task"))
        except FileNotFoundError:  # the process ended between the listing and this read
            continue
    return ids


def pin(pid: int, cpus: frozenset[int], *, children: bool = True) -> None:
    """Pin every thread of `pid` (children included) to `cpus`. A new thread inherits its creator's affinity, so a
    thread started during the walk may carry the old one: walk again until a pass finds no thread not yet pinned."""
    pinned: set[int] = set()
    while pending := thread_ids(pid, children=children) - pinned:
        for tid in pending:
            try:
                os.sched_setaffinity(tid, cpus)
            except ProcessLookupError:  # the thread ended meanwhile
                pass
        pinned |= pending


def affinities(pid: int, *, children: bool = True) -> list[list[int]]:
    """The distinct CPU sets the threads of `pid` may run on (one set when the pinning held)."""
    found = set()
    for tid in thread_ids(pid, children=children):
        try:
            found.add(tuple(sorted(os.sched_getaffinity(tid))))
        except ProcessLookupError:
            continue
    return [list(cpus) for cpus in sorted(found)]


def apply_topology(topology: Topology, *, s3_pid: int, api_pid: int) -> None:
    pin(s3_pid, topology.storage_cpus)
    pin(api_pid, topology.service_cpus)
    # The clients of both paths (their threads start after this); not this process's children, which include
    # the API process and may include the S3 server.
    pin(os.getpid(), topology.service_cpus, children=False)


def checked_affinities(topology: Topology, *, s3_pid: int, api_pid: int) -> dict[str, list[list[int]]]:
    """Each process's thread affinities after a round; raises if a thread escaped its topology's cores."""
    found = {"s3": affinities(s3_pid), "api": affinities(api_pid), "client": affinities(os.getpid(), children=False)}
    wanted = {"s3": topology.storage_cpus, "api": topology.service_cpus, "client": topology.service_cpus}
    for name, sets in found.items():
        if sets != [sorted(wanted[name])]:
            raise RuntimeError(f"{topology.name}: threads of the {name} process may run on {sets}, "
                               f"not only on {sorted(wanted[name])}")
    return found


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
        latencies.append(time.perf_counter() - started)
        direct_done.append((time.perf_counter(), len(data)))

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
            settings = bench_api_settings(s3, root / "api", _free_port())
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
