"""bench/thread_cpu.py: per-thread CPU from /proc, on this process's own threads and on made-up snapshots."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.bench.scripts import load_script

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")




thread_cpu = load_script("thread_cpu")


def _burn(cpu_seconds: float) -> None:
    """Hash until this thread has used `cpu_seconds` of CPU (its own clock, not the wall's)."""
    until = time.thread_time() + cpu_seconds
    block = b"x" * 4096
    while time.thread_time() < until:
        block = hashlib.sha256(block).digest() * 128


def test_a_named_thread_gets_its_own_cpu_and_an_exited_one_is_still_counted() -> None:
    ready, go = threading.Event(), threading.Event()

    def living() -> None:
        ready.set()
        go.wait()
        _burn(0.3)
        go.clear()
        go.wait()  # stay alive until the second snapshot

    worker = threading.Thread(target=living, name="burner")
    worker.start()
    ready.wait()
    before = thread_cpu.read_process(os.getpid(), thread_cpu.python_thread_names())
    go.set()
    short = threading.Thread(target=_burn, args=(0.2,), name="short-lived")
    short.start()
    short.join()
    while go.is_set():
        time.sleep(0.01)
    after = thread_cpu.read_process(os.getpid(), thread_cpu.python_thread_names())
    go.set()
    worker.join()

    used = thread_cpu.delta(before, after)
    assert used["burner"] == pytest.approx(0.3, abs=0.05)
    assert "short-lived" not in used  # gone before the second snapshot...
    assert used[thread_cpu.EXITED] == pytest.approx(0.2, abs=0.05)  # ...but its CPU is the process's
    assert sum(used.values()) == pytest.approx(after.total_s - before.total_s, abs=1e-9)


def test_stat_parsing_survives_a_command_name_with_spaces_and_parentheses(tmp_path: Path) -> None:
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S", *["0"] * 10, str(3 * ticks), str(ticks), *["0"] * 30]  # utime 3 s, stime 1 s
    task = tmp_path / "42" / "task" / "42"
    task.mkdir(parents=True)
    (task / "stat").write_text(f"42 (dask worker) (x) {' '.join(fields)}\n")
    (task / "comm").write_text("dask worker) (x\n")
    (tmp_path / "42" / "stat").write_text(f"42 (dask worker) (x) {' '.join(fields)}\n")
    process = thread_cpu.read_process(42, proc=tmp_path)
    assert process.total_s == pytest.approx(4.0)
    assert process.threads == {42: ("main", pytest.approx(4.0))}


def test_group_folds_numbered_pool_threads_into_one_kind() -> None:
    used = {"witness-0-Dask-Default-Threads-81-0": 2.0, "witness-0-Dask-Default-Threads-81-1": 1.0,
            "MainThread": 0.5, thread_cpu.EXITED: 0.25}
    assert thread_cpu.group(used) == {"witness-0-Dask-Default-Threads": 3.0, "MainThread": 0.5,
                                      thread_cpu.EXITED: 0.25}
