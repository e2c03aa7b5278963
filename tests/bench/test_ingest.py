"""The steady-state columns of bench.ingest: throughput with the first and last waves left out."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

# bench/ is scripts run from the repo root (`python -m bench.ingest`), which import each other as `bench.*`.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
ingest = importlib.import_module("bench.ingest")
MB = ingest.MB


def test_steady_throughput_counts_only_what_completes_between_the_first_and_the_last_wave() -> None:
    # 2 clients, 10 photos of 1 MB: a slow first wave (fill), then one photo every second, then a late straggler.
    completions = [(5.0, MB), (5.0, MB), *[(5.0 + second, MB) for second in range(1, 7)], (11.0, MB), (30.0, MB)]
    # Between the 2nd acknowledgement (t=5) and the last-but-2 (t=11): photos 3..8, 6 MB in 6 s.
    assert ingest.steady_mb_s(completions, clients=2) == pytest.approx(1.0)


def test_the_order_in_which_completions_are_noted_does_not_matter() -> None:
    completions = [(float(t), (t + 1) * MB) for t in range(12)]
    assert ingest.steady_mb_s(completions[::-1], clients=2) == ingest.steady_mb_s(completions, clients=2)


def test_fewer_than_five_waves_give_no_steady_figure() -> None:
    completions = [(float(t), MB) for t in range(9)]
    assert ingest.steady_mb_s(completions, clients=2) is None
    assert ingest.steady_columns(completions, completions, clients=2) == {}


def test_the_steady_ratio_is_the_api_over_the_direct_throughput() -> None:
    direct = [(t / 2, MB) for t in range(20)]  # 2 MB/s
    api = [(float(t), MB) for t in range(20)]  # 1 MB/s
    columns = ingest.steady_columns(direct, api, clients=2)
    assert columns["steady_ratio"] == pytest.approx(0.5)
    assert columns["direct_steady_mb_s"] == pytest.approx(2.0)
