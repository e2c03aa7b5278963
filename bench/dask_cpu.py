"""Where a Dask job's CPU goes: per process (client, scheduler, each worker) and per thread, next to the plain loop.

`bench/extract.py` gives one CPU figure per job (launcher + scheduler + workers). This splits it: each process's
threads are read from /proc before and after the job (`bench/thread_cpu.py`), Python threads by name (the worker's
task thread `Dask-Default-Threads`; its event loop on `MainThread`, where the profiler samples and the ticks run),
native ones by kernel name (OpenCV's pool). Needs Linux. The plain loop (`bench/extract.py`'s, warm) is measured
the same way in this process, before and after each job, as the yardstick. Variants change only the Dask
configuration the cluster starts with (`dask_cluster.start(config=...)`), so the job and its records are the same.

    flock /tmp/witness-bench.lock .venv/bin/python bench/dask_cpu.py --count 96 --variants default,no_profile \
        --workers 1 --repeat 2 --out docs/bench/bench-dask-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distributed import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
import extract as bench  # noqa: E402  (bench/extract.py: photos, upload, loop, job module warm-up)
import thread_cpu  # noqa: E402

from beam_jobs.pipeline.launcher import run_extract  # noqa: E402
from beam_jobs.pipeline.settings import ExtractSettings  # noqa: E402
from infra import dask_cluster, s3server  # noqa: E402
from infra.storage.config import S3Settings  # noqa: E402

JOB_MODULES = bench.JOB_MODULES
# Dask configuration per variant (config keys, as dask_cluster.start takes them).
VARIANTS: dict[str, Mapping[str, str]] = {
    "default": dask_cluster.DASK_DEFAULTS,
    # The worker's statistical profiler walks the task thread's stack each 10 ms (bench/extract.py can read it).
    "no_profile": {"distributed.worker.profile.enabled": "False"},
    # ...and the event-loop health check every 1 s instead of 20 ms, on scheduler and worker alike.
    "quiet": dask_cluster.QUIET_CONFIG,
}


def import_job_modules(modules: tuple[str, ...]) -> None:
    """Defined here, not imported: the cluster cannot import bench/ modules, and __main__'s travel by value."""
    import importlib

    for module in modules:
        importlib.import_module(module)


def python_thread_names() -> dict[int, str]:
    import threading

    return {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id is not None}


def snapshot(pids: Mapping[str, int], names: Mapping[str, Mapping[int, str]]) -> dict[str, thread_cpu.ProcessCpu]:
    return {role: thread_cpu.read_process(pid, names.get(role)) for role, pid in pids.items()}


def cpu_by_thread(before: Mapping[str, thread_cpu.ProcessCpu], after: Mapping[str, thread_cpu.ProcessCpu]
                  ) -> dict[str, dict[str, float]]:
    """CPU seconds per process role and thread kind between two snapshots, with each process's total."""
    used: dict[str, dict[str, float]] = {}
    for role in after:
        kinds = thread_cpu.group(thread_cpu.delta(before[role], after[role]))
        used[role] = {"total": after[role].total_s - before[role].total_s, **kinds}
    return used


def dask_job(settings: ExtractSettings, families: list[str], workers: int, tmp: Path, variant: str
             ) -> dict[str, Any]:
    """One job on a fresh cluster of `workers` single-threaded workers, warmed as bench/extract.py does."""
    data_dir = tmp / f"dask-{variant}-{workers}-{time.monotonic_ns()}"
    cluster = dask_cluster.start(data_dir, port=dask_cluster.free_port(), workers=workers, nthreads=1,
                                 config=VARIANTS[variant])
    try:
        with Client(cluster.address, timeout=10) as client:
            client.run(import_job_modules, JOB_MODULES)
            client.run_on_scheduler(import_job_modules, JOB_MODULES)
            # The task thread starts with the first task; start it now so that it can be named.
            client.submit(len, [], pure=False).result()
            dask_names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
            worker_names = {dask_names[address]: names for address, names in client.run(python_thread_names).items()}
        worker_pids = dask_cluster.worker_pids(data_dir)  # by Dask name, as worker_names
        pids = {"client": os.getpid(), "scheduler": cluster.pids[0], **worker_pids}
        names = {"client": thread_cpu.python_thread_names(), **worker_names}
        before = snapshot(pids, names)
        summary = run_extract(settings, runner="DaskRunner", models=families, beam_args=[
            f"--dask_client_address={cluster.address}", f"--dask_npartitions={8 * workers}"])
        names["client"] = thread_cpu.python_thread_names()  # threads the job started (its Client's loop)
        after = snapshot(pids, names)
    finally:
        dask_cluster.stop(data_dir)
    return {"variant": variant, "workers": workers, "wall_s": summary.seconds, "photos": summary.rows("photos"),
            "cpu": cpu_by_thread(before, after)}


def loop_run(settings: ExtractSettings, families: list[str]) -> dict[str, Any]:
    pid = os.getpid()
    before = snapshot({"loop": pid}, {"loop": thread_cpu.python_thread_names()})
    timings = bench.loop(settings, families)
    after = snapshot({"loop": pid}, {"loop": thread_cpu.python_thread_names()})
    # Loading the models and the warm-up photo run before the loop's clock; its own CPU figure excludes them.
    return {"variant": "loop", "wall_s": timings["total"], "cpu_s_clocked": timings["cpu"],
            "cpu": cpu_by_thread(before, after)}


def summarise(runs: list[dict[str, Any]], count: int) -> list[str]:
    """Median CPU ms per photo of each process role / thread kind for each variant, as text lines."""
    lines: list[str] = []
    for variant in dict.fromkeys(run["variant"] for run in runs):
        chosen = [run for run in runs if run["variant"] == variant]
        keys = sorted({(role, kind) for run in chosen for role, kinds in run["cpu"].items() for kind in kinds})
        walls = [run["wall_s"] for run in chosen]
        lines.append(f"{variant}: {len(chosen)} runs, wall s {', '.join(f'{wall:.1f}' for wall in walls)}")
        for role, kind in keys:
            values = [run["cpu"].get(role, {}).get(kind, 0.0) for run in chosen]
            median = statistics.median(values)
            if kind == "total" or median * 1000 / count >= 1:
                lines.append(f"  {role:10s} {kind:28s} {1000 * median / count:7.1f} ms/photo  "
                             f"({', '.join(f'{value:.2f}' for value in values)} s)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=96)
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--variants", default="default", help="comma-separated, of: " + ",".join(VARIANTS))
    parser.add_argument("--repeat", type=int, default=1, help="rounds of loop, then each variant, alternating")
    parser.add_argument("--out", type=Path, default=Path("bench-dask-cpu.json"))
    args = parser.parse_args(argv)
    variants = [name for name in args.variants.split(",") if name]
    families = list(bench.installed_families(ExtractSettings.from_mapping({}).models_dir))
    files = bench.photo_files(args.count)
    runs: list[dict[str, Any]] = []
    started = {"utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "load": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="bench-dask-cpu-") as tmp:
        port = s3server.find_free_port_base()
        base = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
        s3server.start(Path(tmp) / "s3", base, s3_port=port)
        try:
            loop_settings = bench.upload(base, "loop", files, families, None)
            runs.append(loop_run(loop_settings, families))
            for round_index in range(args.repeat):
                for workers in args.workers:
                    for variant in variants:
                        name = f"{variant}-{workers}-{round_index}"
                        settings = bench.upload(base, name, files, families, None)
                        run = dask_job(settings, families, workers, Path(tmp), variant)
                        run["variant"] = f"dask_{workers} {variant}"
                        runs.append(run)
                        print(f"{run['variant']}: {run['wall_s']:.1f} s wall", flush=True)
                        runs.append(loop_run(loop_settings, families))
        finally:
            s3server.stop(Path(tmp) / "s3")
    ended = {"utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "load": list(os.getloadavg())}
    lines = summarise(runs, args.count)
    print("\n".join(lines))
    args.out.write_text(json.dumps({"count": args.count, "families": families, "started": started, "ended": ended,
                                    "variants": {name: dict(VARIANTS[name]) for name in variants}, "runs": runs,
                                    "summary": lines}, indent=2))
    print(f"results in {args.out}; load {started['load'][0]:.1f} -> {ended['load'][0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
