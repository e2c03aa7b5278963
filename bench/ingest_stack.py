"""The stack bench.ingest and bench.ingest_phases measure: a throw-away S3 server, the API in its own process(es),
their CPU and the CPU topology each runs in.

The S3 server is SeaweedFS as the project's local stack runs it, with volumes larger than a benchmark writes; the
API is served from a child process (or several sharing the port), so its CPU is measured apart from the clients'.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import httpx
import psutil
import urllib3
import uvicorn
from minio import Minio

from infra import s3server
from infra.storage.client import ensure_buckets
from infra.storage.config import S3Settings
from ingest_api.settings import ApiSettings

BENCH_VOLUME_LIMIT_MB = 30_000


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
    from ingest_api.app import create_app  # the whole app: only in the API's process

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


def free_port() -> int:
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
