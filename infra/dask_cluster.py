"""Start, wait for and stop a real dask.distributed cluster on 127.0.0.1 for the job's DaskRunner.

One `dask scheduler` and N `dask worker` processes (no nanny; dashboard off, its HTTP server on loopback),
each tracked by a PID file in the cluster's folder, like infra/s3server.py does for SeaweedFS. Started with
`QUIET_CONFIG` (no statistical profiler, a slow event-loop health check) unless told otherwise. Used by the
tests and by hand:

    python -m infra.dask_cluster start .witness/dask --port 8786 --workers 2
    python -m beam_jobs.extract --runner=DaskRunner --dask_client_address=127.0.0.1:8786 --dask_npartitions=4
    python -m infra.dask_cluster stop .witness/dask
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from distributed import Client

from infra import processes

SCHEDULER_PID = "scheduler.pid"
WORKER_PID = "worker-{index}.pid"
# --no-dashboard still starts an HTTP server (health, metrics) on 0.0.0.0 unless given an address.
_QUIET_HTTP = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
_SCRIPT = "import sys; from distributed.cli.{cli} import main; sys.argv[0] = 'dask {name}'; sys.exit(main())"
# Dask's defaults suit an interactive cluster watched on its dashboard: every worker samples its task thread's stack
# each 10 ms for the dashboard's profile, and every process times its own event loop each 20 ms. This cluster has
# no dashboard. With them, Dask's own threads spent 51-74 CPU ms per photo of a one-photo-at-a-time job (~15 % of
# its work), 19-34 without (docs/BENCHMARKS.md, Extraction, 2026-12-07). Keys are Dask config keys; values as Dask
# reads them from DASK_* variables.
QUIET_CONFIG: Mapping[str, str] = {"distributed.worker.profile.enabled": "False",
                                   "distributed.admin.tick.interval": "1s"}
DASK_DEFAULTS: Mapping[str, str] = {}  # Dask's own configuration (the profiler on, e.g. to read `Client.profile`)


class DaskClusterError(Exception):
    """The cluster could not be started or did not become ready."""


@dataclass(frozen=True)
class LocalDaskCluster:
    data_dir: Path
    port: int
    pids: tuple[int, ...]  # scheduler first

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def config_environment(config: Mapping[str, str]) -> dict[str, str]:
    """Dask config keys as the variables Dask reads at start: `distributed.admin.tick.interval` becomes
    `DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL` (Dask treats `-` and `_` in key names alike)."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): value for key, value in config.items()}


def _spawn(data_dir: Path, cli: str, name: str, args: list[str], pid_name: str, config: Mapping[str, str]) -> int:
    command = [sys.executable, "-c", _SCRIPT.format(cli=cli, name=name), *args]
    log_path = data_dir / pid_name.replace(".pid", ".log")
    return processes.spawn_detached(command, log_path=log_path, pid_path=data_dir / pid_name,
                                    env=config_environment(config))


def running_pids(data_dir: Path) -> list[int]:
    recorded = (processes.recorded_pid(pid_file) for pid_file in sorted(data_dir.glob("*.pid")))
    return [pid for pid in recorded if pid is not None]


def start(data_dir: Path, *, port: int, workers: int = 2, nthreads: int = 1, memory_limit: str = "4GiB",
          config: Mapping[str, str] = QUIET_CONFIG, timeout_s: float = 60.0) -> LocalDaskCluster:
    """Start the scheduler and `workers` worker processes; return once all workers have registered.

    `config`: Dask config keys for every process of the cluster, on top of Dask's defaults (`DASK_DEFAULTS`: none).
    """
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if running_pids(data_dir):
        raise DaskClusterError(f"a cluster already runs from {data_dir}; stop it first")
    pids = [_spawn(data_dir, "dask_scheduler", "scheduler",
                   ["--host", "127.0.0.1", "--port", str(port), *_QUIET_HTTP, "--no-show"], SCHEDULER_PID, config)]
    pids += [add_worker(data_dir, port=port, index=index, nthreads=nthreads, memory_limit=memory_limit,
                        config=config) for index in range(workers)]
    cluster = LocalDaskCluster(data_dir, port, tuple(pids))
    try:
        wait_until_ready(cluster, workers=workers, timeout_s=timeout_s)
    except DaskClusterError:
        stop(data_dir)
        raise
    return cluster


def add_worker(data_dir: Path, *, port: int, index: int, nthreads: int = 1, memory_limit: str = "4GiB",
               config: Mapping[str, str] = QUIET_CONFIG) -> int:
    """Start worker `witness-<index>` for the scheduler on `port` (also how a lost worker is replaced); its PID."""
    data_dir = data_dir.resolve()
    return _spawn(data_dir, "dask_worker", "worker", [
        f"tcp://127.0.0.1:{port}", "--host", "127.0.0.1", *_QUIET_HTTP, "--no-nanny", "--nthreads", str(nthreads),
        "--memory-limit", memory_limit, "--name", worker_name(index),
        "--local-directory", str(data_dir / f"worker-{index}"),
    ], WORKER_PID.format(index=index), config)


def worker_name(index: int) -> str:
    return f"witness-{index}"


def worker_pids(data_dir: Path) -> dict[str, int]:
    """PID of every running worker by its Dask name (`scheduler_info()` reports names, not PIDs)."""
    pids: dict[str, int] = {}
    for pid_file in sorted(data_dir.resolve().glob(WORKER_PID.format(index="*"))):
        pid = processes.recorded_pid(pid_file)
        if pid is not None:
            pids[worker_name(int(pid_file.stem.removeprefix("worker-")))] = pid
    return pids


def wait_until_ready(cluster: LocalDaskCluster, *, workers: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        dead = [pid for pid in cluster.pids if not processes.alive(pid)]
        if dead:
            raise DaskClusterError(f"dask processes {dead} exited during start-up; see the logs in {cluster.data_dir}")
        try:
            with Client(cluster.address, timeout=5) as client:
                client.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
                return
        except (OSError, TimeoutError) as error:
            last = error
        time.sleep(0.2)
    raise DaskClusterError(f"dask cluster at {cluster.address} not ready after {timeout_s:.0f}s: {last}")


def stop(data_dir: Path, *, timeout_s: float = 15.0) -> int:
    """Stop every process recorded in `data_dir` (workers first); returns how many were running."""
    data_dir = data_dir.resolve()
    pid_files = sorted(data_dir.glob("*.pid"), key=lambda path: path.name == SCHEDULER_PID)
    return sum(processes.stop_recorded(pid_file, timeout_s=timeout_s) for pid_file in pid_files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--port", type=int, default=8786)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--nthreads", type=int, default=1)
    parser.add_argument("--dask-defaults", action="store_true",
                        help="Dask's own configuration (profiler on, 20 ms event-loop checks) instead of QUIET_CONFIG")
    args = parser.parse_args(argv)
    if args.action == "start":
        config = DASK_DEFAULTS if args.dask_defaults else QUIET_CONFIG
        cluster = start(args.data_dir, port=args.port, workers=args.workers, nthreads=args.nthreads, config=config)
        print(f"dask cluster ready at {cluster.address} (pids {', '.join(map(str, cluster.pids))})")
    else:
        print(f"stopped {stop(args.data_dir)} dask processes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
