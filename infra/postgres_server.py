"""A throw-away PostgreSQL cluster on loopback, for tests that prove the production database path.

Production uses a managed PostgreSQL (see infra/compose/compose.yaml); this starts Debian's server binaries on a
private data folder and port. PostgreSQL refuses to run as root, so under root the cluster belongs to the
`postgres` system user.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_ROOTS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class PostgresServerError(Exception):
    """The PostgreSQL server binaries are missing or the cluster would not start."""


@dataclass(frozen=True)
class PostgresCluster:
    data_dir: Path
    port: int
    user: str

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/witness"


def _bin(name: str) -> str:
    for root in PG_ROOTS:
        if (root / name).exists():
            return str(root / name)
    raise PostgresServerError(f"PostgreSQL server binary {name!r} not found: apt-get install postgresql")


def _as_owner(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start(data_dir: Path, *, port: int, timeout_s: float = 30.0) -> PostgresCluster:
    data_dir.mkdir(parents=True, exist_ok=True)
    user = "postgres" if os.geteuid() == 0 else getpass.getuser()
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
    cluster = data_dir / "cluster"
    try:
        subprocess.run(
            _as_owner([_bin("initdb"), "-D", str(cluster), "-U", user, "--auth=trust", "-E", "UTF8"]),
            check=True,
            capture_output=True,
            text=True,
        )
        subprocess.run(
            _as_owner(
                [
                    _bin("pg_ctl"),
                    "-D",
                    str(cluster),
                    "-l",
                    str(data_dir / "postgres.log"),
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "-o",
                    f"-h 127.0.0.1 -p {port} -k {data_dir}",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as error:
        raise PostgresServerError(f"PostgreSQL did not start: {error.stderr or error.stdout}") from error
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE witness")
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return PostgresCluster(data_dir, port, user)


def stop(cluster: PostgresCluster) -> None:
    subprocess.run(
        _as_owner([_bin("pg_ctl"), "-D", str(cluster.data_dir / "cluster"), "-m", "fast", "-w", "stop"]),
        check=False,
        capture_output=True,
    )
