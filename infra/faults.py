"""Deterministic crash points: SIGKILL this process at a named step, so a test can hit a window no timer reaches.

A test starts a real process (`witness serve`, `witness index`) with `WITNESS_CRASH_AT=<point>`; when the code
reaches `crash_point(<point>)` the process kills itself with SIGKILL (no cleanup, no `finally`, no flush: what a
power cut or the OOM killer does), and the test restarts it without the variable. The idea is FoundationDB's
BUGGIFY and etcd's gofail, reduced to what the reliability suite needs:

    crash_point(CrashPoint.INGEST_MANIFEST_STORED)                         # in the code under test
    env = {**os.environ, **crash_environment(CrashPoint.INGEST_MANIFEST_STORED)}   # in the test

Every point is a member of `CrashPoint`, the one list of them, so a misspelt point is an `AttributeError` (and a
mypy error) at the call site or in the test, never a crash that silently does not happen. The variable is read
at call time (no import-time state, so a test may set it for a child process only) and costs one dict lookup
when it is absent, which is always outside these tests. It is not a setting on purpose: it is not configuration
of any deployable, and no settings object should carry a switch that kills the process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from enum import StrEnum

CRASH_AT_VARIABLE = "WITNESS_CRASH_AT"


class CrashPoint(StrEnum):
    """The steps a test may crash a process at (value: what `WITNESS_CRASH_AT` names)."""

    #: `indexers.s3_versions.publish_version`: the new version and its `release.json` are uploaded, the pointer
    #: (`CURRENT.json`) is not yet rewritten.
    INDEX_RELEASED_NOT_POINTED = "index-released-not-pointed"
    #: `ingest_api.services.ingest.IngestService.accept_photo`: the original and its manifest are stored in S3,
    #: the upload row (and so the receipt) is not yet committed.
    INGEST_MANIFEST_STORED = "ingest-manifest-stored"


class UnknownCrashPoint(ValueError):
    """A crash point name that `CrashPoint` does not list."""


def checked(name: str) -> CrashPoint:
    """`name` as a `CrashPoint`; raises `UnknownCrashPoint` naming the bad value and the known ones."""
    try:
        return CrashPoint(name)
    except ValueError as error:
        known = ", ".join(point.value for point in CrashPoint)
        raise UnknownCrashPoint(f"{CRASH_AT_VARIABLE}: no crash point {name!r} (known: {known})") from error


def crash_environment(point: str) -> dict[str, str]:
    """The environment entry that makes a child process die at `point` (checked: a typo fails here, loudly)."""
    return {CRASH_AT_VARIABLE: checked(point).value}


def should_crash(point: CrashPoint, environ: Mapping[str, str]) -> bool:
    """Whether `environ` asks for a crash at `point`."""
    return environ.get(CRASH_AT_VARIABLE) == point.value


def crash_point(point: CrashPoint, environ: Mapping[str, str] | None = None) -> None:
    """SIGKILL the current process if `WITNESS_CRASH_AT` (in `environ`, default the process environment, read
    now) names `point`; otherwise return at once."""
    if should_crash(point, os.environ if environ is None else environ):
        # Unbuffered, so the child's log says why it died; then the same signal an OOM kill sends.
        os.write(2, f"{CRASH_AT_VARIABLE}: SIGKILL at crash point {point.value}\n".encode())
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["CRASH_AT_VARIABLE", "CrashPoint", "UnknownCrashPoint", "checked", "crash_environment", "crash_point"]
