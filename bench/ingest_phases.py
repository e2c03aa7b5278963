"""Where an upload through the API spends its wall time, phase by phase, next to the same photos put directly.

Runs the stack of `bench.ingest` (SeaweedFS, the API in its own process, this process as the clients) in one CPU
topology (`isolated` by default: the S3 server on CPU 0, the API and the clients on CPU 1). The API process is
instrumented from the outside, by wrapping functions before the app is built (nothing in `ingest_api` changes):

    request -> [deps]  -> spool (receive) -> [threadpool wait] -> db txn 1 (checks, sniff, submission) ->
    original PUT -> manifest PUT -> db txn 2 (upload row) -> [back to the loop] -> response sent

Per level and round it reports the median wall time of each phase, the original PUT's wall time per MB next to
the direct path's `put_object` per MB at the same concurrency, the event loop's lag (a 5 ms ticker), new S3
connections, and how much of the run had a body being received, an original PUT in flight, or both at once.

    flock /tmp/witness-bench.lock .venv/bin/python -m bench.ingest_phases --uploads 32 --levels 8,32 --rounds 3 \\
        --out docs/bench/bench-ingest-phases-....json   # repo root
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from io import BytesIO
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

import numpy as np

from bench.ingest_stack import (
    apply_topology,
    bench_s3_server,
    checked_affinities,
    free_port,
    topology_named,
    wait_healthy,
)
from infra.storage.client import build_client
from infra.storage.evidence import store_original
from infra.storage.integrity import Verification
from ingest_api.settings import ApiSettings
from tests.reliability.workload import MB, bench_api_settings, create_event, synthetic_photos, upload_all

Record = dict[str, float]
_current: contextvars.ContextVar[Record | None] = contextvars.ContextVar("bench_phase_record", default=None)


def _stamp(name: str) -> None:
    record = _current.get()
    if record is not None:
        record[name] = time.monotonic()


def _timed(function: Callable[..., Any], start: str, end: str) -> Callable[..., Any]:
    """`function`, stamping the current request's record when it starts and ends (in the thread it runs in:
    anyio copies the context into the worker thread, and the record is a shared dict)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _stamp(start)
        try:
            return function(*args, **kwargs)
        finally:
            _stamp(end)

    return wrapper


def _instrument(records: list[Record], lags: list[tuple[float, float]], connections: list[float]) -> None:
    """Wrap the upload route's steps in this (the API's) process; must run before the app is built."""
    import urllib3.connectionpool
    from starlette import concurrency

    import infra.local_stack
    from ingest_api.db import repository
    from ingest_api.routes import photos
    from ingest_api.services.ingest import IngestService

    spool = photos.spool_body

    async def timed_spool(*args: Any, **kwargs: Any) -> Any:
        _stamp("spool_start")
        try:
            return await spool(*args, **kwargs)
        finally:
            _stamp("spool_end")

    async def timed_threadpool(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        _stamp("pool_submit")
        record = _current.get()
        if record is not None and "body" in kwargs:
            record["size"] = float(kwargs["body"].size)
        return await concurrency.run_in_threadpool(_timed(function, "thread_start", "thread_end"), *args, **kwargs)

    photos.spool_body = timed_spool
    photos.run_in_threadpool = timed_threadpool  # type: ignore[assignment]
    IngestService._store = _timed(IngestService._store, "put_start", "put_end")  # type: ignore[method-assign]
    IngestService._write_manifest = _timed(  # type: ignore[method-assign]
        IngestService._write_manifest, "manifest_start", "manifest_end")
    repository.record_upload = _timed(repository.record_upload, "txn2_start", "txn2_end")
    new_conn = urllib3.connectionpool.HTTPConnectionPool._new_conn

    def counted_new_conn(self: Any) -> Any:
        connections.append(time.monotonic())
        return new_conn(self)

    urllib3.connectionpool.HTTPConnectionPool._new_conn = counted_new_conn  # type: ignore[method-assign]

    async def ticker() -> None:  # how late the loop runs a 5 ms timer: time it spends away from its callbacks
        while True:
            asked = time.monotonic()
            await asyncio.sleep(0.005)
            now = time.monotonic()
            lags.append((now, now - asked - 0.005))

    build = infra.local_stack.create_app

    def timed_app(settings: ApiSettings) -> Any:
        app = build(settings)
        ticking: list[asyncio.Task[None]] = []

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            if not ticking:
                ticking.append(asyncio.get_running_loop().create_task(ticker()))
            if scope["type"] != "http" or not scope["path"].endswith("/photos"):
                return await app(scope, receive, send)
            record: Record = {"request_start": time.monotonic()}
            _current.set(record)

            async def timed_send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    record["status"] = float(message["status"])
                await send(message)
                if message["type"] == "http.response.body" and not message.get("more_body", False):
                    record["response_end"] = time.monotonic()

            await app(scope, receive, timed_send)
            records.append(record)

        return asgi

    infra.local_stack.create_app = timed_app


def _serve(
    settings: ApiSettings, stop: EventType, dump: EventType, out: str, switch_interval: float | None
) -> None:
    if switch_interval is not None:  # the GIL hand-over interval of the API process (CPython's default: 5 ms)
        sys.setswitchinterval(switch_interval)
    records: list[Record] = []
    lags: list[tuple[float, float]] = []
    connections: list[float] = []
    _instrument(records, lags, connections)
    from infra.local_stack import api_in_background

    with api_in_background(settings):
        while not stop.is_set():
            if dump.wait(0.2):
                Path(out).write_text(json.dumps({"records": records, "lags": lags, "connections": connections}))
                for kept in (records, lags, connections):
                    kept.clear()
                dump.clear()


PHASES = {  # name: (from, to) stamps
    "before the body (dependencies)": ("request_start", "spool_start"),
    "receive/spool": ("spool_start", "spool_end"),
    "threadpool wait": ("pool_submit", "thread_start"),
    "db txn 1 + sniff": ("thread_start", "put_start"),
    "original PUT": ("put_start", "put_end"),
    "manifest PUT": ("manifest_start", "manifest_end"),
    "db txn 2": ("txn2_start", "txn2_end"),
    "back to loop + response": ("thread_end", "response_end"),
    "whole request": ("request_start", "response_end"),
}


def busy_fraction(intervals: list[tuple[float, float]], start: float, end: float) -> float:
    """Fraction of [start, end] covered by at least one interval."""
    edges = sorted((max(a, start), min(b, end)) for a, b in intervals if b > start and a < end)
    covered, reach = 0.0, start
    for a, b in edges:
        if b > reach:
            covered += b - max(a, reach)
            reach = b
    return covered / max(end - start, 1e-9)


def both_fraction(first: list[tuple[float, float]], second: list[tuple[float, float]], start: float,
                  end: float, step: float = 0.002) -> float:
    """Fraction of [start, end] during which an interval of each list is open (sampled every `step` s)."""
    grid = np.arange(start, end, step)

    def open_at(intervals: list[tuple[float, float]]) -> np.ndarray:
        mask = np.zeros(len(grid), dtype=bool)
        for a, b in intervals:
            mask |= (grid >= a) & (grid < b)
        return mask

    return float((open_at(first) & open_at(second)).mean()) if len(grid) else float("nan")


def summarise(api: dict[str, Any], direct: list[tuple[float, float, int]],
              window: tuple[float, float]) -> dict[str, Any]:
    records = [r for r in api["records"] if r.get("status") == 201.0]
    phases = {name: 1000 * float(np.median([r[b] - r[a] for r in records])) for name, (a, b) in PHASES.items()}
    put_ms_mb = [1000 * (r["put_end"] - r["put_start"]) / (r["size"] / MB) for r in records]
    lag_ms = [1000 * lag for t, lag in api["lags"] if window[0] <= t <= window[1]]
    receives = [(r["spool_start"], r["spool_end"]) for r in records]
    puts = [(r["put_start"], r["manifest_end"]) for r in records]
    return {
        "accepted": len(records),
        "phase_ms_p50": phases,
        "phase_ms_p90": {name: 1000 * float(np.percentile([r[b] - r[a] for r in records], 90))
                         for name, (a, b) in PHASES.items()},
        "api_put_ms_per_mb_p50": float(np.median(put_ms_mb)),
        "direct_put_ms_p50": 1000 * float(np.median([b - a for a, b, _ in direct])),
        "direct_put_ms_per_mb_p50": float(np.median([1000 * (b - a) / (n / MB) for a, b, n in direct])),
        "loop_lag_ms_p50_p99_max": [float(np.percentile(lag_ms, q)) for q in (50, 99, 100)] if lag_ms else [],
        "new_s3_connections": len(api["connections"]),
        "share_receiving": busy_fraction(receives, *window),
        "share_storing": busy_fraction(puts, *window),
        "share_both": both_fraction(receives, puts, *window),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=32, help="photos per level, round and path")
    parser.add_argument("--levels", default="8,32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--topology", default="isolated", help="shared or isolated (see bench.ingest)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--direct-form", choices=("plain", "api"), default="plain",
                        help="direct path: plain put_object to an unversioned bucket (as bench.ingest), or the "
                             "API's PUT of an original (evidence bucket, If-None-Match, checksum) from this process")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval in the API process (s)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    topology = topology_named(args.topology, frozenset(os.sched_getaffinity(0)))
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="witness-bench-phases-") as scratch:
        root = Path(scratch)
        levels = [int(level) for level in args.levels.split(",")]
        with bench_s3_server(root, max_clients=max(levels)) as (s3, server, direct):
            api_form = build_client(s3)
            settings = bench_api_settings(s3, root / "api", free_port())
            event_id = create_event(settings)
            photos = synthetic_photos(args.uploads, seed=args.seed)
            context = multiprocessing.get_context("spawn")
            stop, dump, dumped = context.Event(), context.Event(), str(root / "phases.json")
            api = context.Process(target=_serve, args=(settings, stop, dump, dumped, args.switch_interval),
                                  name="witness-bench-api")
            api.start()
            try:
                base_url = f"http://{settings.host}:{settings.port}"
                wait_healthy(base_url, api)
                assert api.pid is not None
                for clients in levels:
                    for round_index in range(args.rounds):
                        apply_topology(topology, s3_pid=server.pid, api_pid=api.pid)
                        tag = f"c{clients}r{round_index}"
                        timings: list[tuple[float, float, int]] = []
                        lock = threading.Lock()

                        def put(index: int, tag: str = tag, timings: list[tuple[float, float, int]] = timings,
                                lock: threading.Lock = lock) -> None:
                            data = photos.photo(index) if args.direct_form == "plain" else \
                                photos.retagged(f"{tag}-direct").photo(index)
                            started = time.monotonic()
                            if args.direct_form == "plain":
                                direct.put_object("bench-direct", f"{tag}/{index}.jpg", BytesIO(data), len(data),
                                                  content_type="image/jpeg")
                            else:  # the API's own PUT of an original, from the API's client, without the API
                                store_original(api_form, s3.buckets.evidence, stream=BytesIO(data), size=len(data),
                                               sha256=hashlib.sha256(data).hexdigest(), content_type="image/jpeg",
                                               verification=Verification.SERVER_CHECKSUM)
                            with lock:
                                timings.append((started, time.monotonic(), len(data)))

                        started = time.monotonic()
                        with ThreadPoolExecutor(max_workers=clients) as pool:
                            list(pool.map(put, range(len(photos))))
                        direct_s = time.monotonic() - started
                        dump.set()  # drop what the direct path's idle API recorded (nothing, bar the ticker)
                        while dump.is_set():
                            time.sleep(0.05)
                        started = time.monotonic()
                        outcomes = upload_all(base_url, event_id, photos.retagged(f"{tag}-api"), clients=clients,
                                              deadline_s=600)
                        window = (started, time.monotonic())
                        time.sleep(0.2)  # the API files a record after its last byte is sent: let the last ones land
                        dump.set()
                        while dump.is_set():
                            time.sleep(0.05)
                        if any(o.status != 201 for o in outcomes):
                            raise RuntimeError(f"not all acknowledged: {sorted({str(o.status) for o in outcomes})}")
                        checked_affinities(topology, s3_pid=server.pid, api_pid=api.pid)
                        api_s = window[1] - window[0]
                        row = {"clients": clients, "round": round_index, "direct_s": direct_s, "api_s": api_s,
                               "ratio": direct_s / api_s,
                               **summarise(json.loads(Path(dumped).read_text()), timings, window)}
                        print(json.dumps(row), flush=True)
                        results.append(row)
            finally:
                stop.set()
                api.join(30)
    report = {"benchmark": "ingest-phases", "command": "python -m bench.ingest_phases " + " ".join(
        argv if argv is not None else sys.argv[1:]), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "topology": args.topology,
        "switch_interval": args.switch_interval, "direct_form": args.direct_form, "results": results}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
