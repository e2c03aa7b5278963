"""The interval arithmetic behind bench.ingest_phases' "share of the run" columns."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

# bench/ is scripts run from the repo root (`python -m bench.ingest_phases`), which import each other as `bench.*`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
phases = importlib.import_module("bench.ingest_phases")
both_fraction, busy_fraction = phases.both_fraction, phases.busy_fraction


def test_busy_fraction_merges_overlaps_and_clips_to_the_window() -> None:
    intervals = [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (9.0, 12.0)]
    # covered within [0, 10]: [0, 3] + [5, 6] + [9, 10] = 5 of 10
    assert busy_fraction(intervals, 0.0, 10.0) == pytest.approx(0.5)


def test_busy_fraction_of_nothing_is_zero() -> None:
    assert busy_fraction([], 0.0, 1.0) == 0.0
    assert busy_fraction([(2.0, 3.0)], 0.0, 1.0) == 0.0


def test_both_fraction_counts_only_time_when_each_list_has_an_open_interval() -> None:
    receiving = [(0.0, 4.0)]
    storing = [(2.0, 6.0), (7.0, 8.0)]
    # both open during [2, 4]: 2 of 10
    assert both_fraction(receiving, storing, 0.0, 10.0, step=0.01) == pytest.approx(0.2, abs=0.01)
    assert both_fraction(receiving, [], 0.0, 10.0) == 0.0
