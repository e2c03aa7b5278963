"""Small helpers for the reliability and fuzz suites: gating the nightly-size runs, loopback ports."""

from __future__ import annotations

import socket

import pytest


def skip_unless_slow_selected(request: pytest.FixtureRequest) -> None:
    """Run a `slow` test only when `-m` names `slow`: CI runs plain `pytest`, which would otherwise run it.

    (A project-wide `-m "not slow"` in pytest's addopts would make this unnecessary.)
    """
    if "slow" not in (request.config.getoption("markexpr") or "").replace("not slow", ""):
        pytest.skip("nightly-size run: select it with -m slow")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
