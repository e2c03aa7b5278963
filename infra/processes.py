"""Background server processes tracked by PID files: spawn detached, check, stop.

Shared by the local S3 server and the local Dask cluster. posix_spawn rather than subprocess.Popen: the server
outlives the call that started it (and maybe this process), so there is no Popen object to be garbage-collected
while the child still runs; setsid gives it its own process group so stopping it also stops its children.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn_detached(command: Sequence[str], *, log_path: Path, pid_path: Path,
                   env: Mapping[str, str] | None = None) -> int:
    """Start `command` in its own session with stdout+stderr appended to `log_path`; record its PID.
    `env`: variables set for it on top of this process's environment."""
    pid = os.posix_spawn(
        command[0],
        list(command),
        {**os.environ, **(env or {})},
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )
    pid_path.write_text(str(pid))
    return pid


def alive(pid: int) -> bool:
    try:  # reap it first if it is our own exited child, or kill(0) would still see the zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def recorded_pid(pid_path: Path) -> int | None:
    """The PID in `pid_path` if that process still runs; a stale file is removed."""
    if not pid_path.exists():
        return None
    pid = int(pid_path.read_text().strip())
    if not alive(pid):
        pid_path.unlink(missing_ok=True)
        return None
    return pid


def stop_recorded(pid_path: Path, *, timeout_s: float = 15.0) -> bool:
    """SIGTERM the process group recorded in `pid_path`, SIGKILL after `timeout_s`; True if one was running."""
    pid = recorded_pid(pid_path)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    pid_path.unlink(missing_ok=True)
    return True
