"""CPU seconds per thread of a set of processes, from /proc: where a Dask job's CPU goes.

`process.cpu_times()` says how much a worker used, not on what. Linux keeps user + system time per thread
(/proc/<pid>/task/<tid>/stat); Python threads are named by matching their `native_id`, other threads (OpenCV,
ONNX Runtime, the allocator) keep their kernel name. Two snapshots give the CPU of each thread between them;
threads that exited in between show up as "(exited threads)", the process total minus its living threads.

    before = snapshot({"worker": pid}, names={"worker": client.run(python_thread_names)[address]})
    ...
    print(delta(before, snapshot(...)))
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EXITED = "(exited threads)"
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessCpu:
    """CPU seconds of one process in total (exited threads included) and of each living thread by tid."""

    total_s: float
    threads: Mapping[int, tuple[str, float]]  # tid -> (name, CPU seconds)


def python_thread_names() -> dict[int, str]:
    """This process's Python threads by native id (run it inside each process, e.g. with `client.run`)."""
    return {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id is not None}


def _stat_seconds(stat_text: str) -> float:
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S  # utime, stime (fields 14, 15)


def read_process(pid: int, names: Mapping[int, str] | None = None, proc: Path = Path("/proc")) -> ProcessCpu:
    """One snapshot of process `pid`; `names` (tid -> Python thread name) label its Python threads."""
    threads: dict[int, tuple[str, float]] = {}
    for task in (proc / str(pid) / "task").iterdir():
        try:
            stat = (task / "stat").read_text()
            comm = (task / "comm").read_text().strip()
        except (FileNotFoundError, ProcessLookupError):  # the thread exited while we listed them
            continue
        tid = int(task.name)
        label = (names or {}).get(tid) or ("main" if tid == pid else f"native:{comm}")
        threads[tid] = (label, _stat_seconds(stat))
    return ProcessCpu(_stat_seconds((proc / str(pid) / "stat").read_text()), threads)


def delta(before: ProcessCpu, after: ProcessCpu) -> dict[str, float]:
    """CPU seconds between two snapshots of one process by thread label (threads of one label summed)."""
    used: dict[str, float] = {}
    living = 0.0
    for tid, (name, seconds) in after.threads.items():
        spent = seconds - (before.threads[tid][1] if tid in before.threads else 0.0)
        used[name] = used.get(name, 0.0) + spent
        living += spent
    used[EXITED] = max(0.0, after.total_s - before.total_s - living)
    return used


def group(used: Mapping[str, float]) -> dict[str, float]:
    """Thread labels folded into kinds: numbered pool threads (`Dask-Default-Threads-123-0`) into one."""
    kinds: dict[str, float] = {}
    for name, seconds in used.items():
        kind = name.rstrip("0123456789-_") or name
        kinds[kind] = kinds.get(kind, 0.0) + seconds
    return kinds
