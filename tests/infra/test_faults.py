"""`infra.faults`: a crash point kills its own process only when `WITNESS_CRASH_AT` names it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from infra.faults import CRASH_AT_VARIABLE, CrashPoint, UnknownCrashPoint, crash_environment, crash_point

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("indexers", "ingest_api", "beam_jobs", "infra")


def run_child(point: CrashPoint, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A Python child that reaches `point` and then prints `survived`."""
    code = f"from infra.faults import CrashPoint, crash_point; crash_point(CrashPoint.{point.name}); print('survived')"
    env = {key: value for key, value in os.environ.items() if key != CRASH_AT_VARIABLE} | environ
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_named_point_kills_the_process_with_sigkill() -> None:
    child = run_child(CrashPoint.INGEST_MANIFEST_STORED, crash_environment(CrashPoint.INGEST_MANIFEST_STORED))
    assert child.returncode == -signal.SIGKILL
    assert child.stdout == ""
    assert CrashPoint.INGEST_MANIFEST_STORED.value in child.stderr


@pytest.mark.parametrize("environ", [{}, crash_environment(CrashPoint.INDEX_RELEASED_NOT_POINTED),
                                     {CRASH_AT_VARIABLE: ""}])
def test_any_other_setting_leaves_the_process_running(environ: dict[str, str]) -> None:
    child = run_child(CrashPoint.INGEST_MANIFEST_STORED, environ)
    assert (child.returncode, child.stdout) == (0, "survived\n"), child.stderr


def test_a_mapping_stands_in_for_the_environment() -> None:
    crash_point(CrashPoint.INDEX_RELEASED_NOT_POINTED, {CRASH_AT_VARIABLE: CrashPoint.INGEST_MANIFEST_STORED.value})
    crash_point(CrashPoint.INDEX_RELEASED_NOT_POINTED, {})  # still alive: neither names this point


def test_a_misspelt_point_fails_loudly() -> None:
    with pytest.raises(UnknownCrashPoint, match="'ingest-manifest-stord'.*ingest-manifest-stored"):
        crash_environment("ingest-manifest-stord")


@pytest.mark.parametrize("point", list(CrashPoint))
def test_every_point_has_exactly_one_call_site(point: CrashPoint) -> None:
    needle = f"crash_point(CrashPoint.{point.name})"
    sites = [path.relative_to(REPO) for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))
             if path.name != "faults.py" and needle in path.read_text(encoding="utf-8")]
    assert len(sites) == 1, f"{point.name}: call sites {sites}"
