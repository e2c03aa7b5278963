"""bench/extract.py's steady-state fit: made-up runs with a known start-up and rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.bench.scripts import load_script

bench = load_script("extract")


def test_fit_recovers_start_up_and_rate_of_an_exact_line() -> None:
    fit = bench.fit_line([(32, 5 + 0.25 * 32), (64, 5 + 0.25 * 64), (128, 5 + 0.25 * 128)])
    assert fit.fixed_s == pytest.approx(5.0)
    assert fit.per_photo_s == pytest.approx(0.25)
    assert fit.photos_per_s == pytest.approx(4.0)
    assert fit.per_photo_stderr_s == pytest.approx(0.0, abs=1e-9)


def test_fit_is_least_squares_with_the_slopes_standard_error() -> None:
    sizes, seconds = [32, 32, 64, 64, 128, 192], [14.0, 16.5, 22.0, 27.0, 45.0, 60.5]
    fit = bench.fit_line(list(zip(sizes, seconds, strict=True)))
    (slope, intercept), covariance = np.polyfit(sizes, seconds, 1, cov="unscaled")
    residual_variance = sum((s - intercept - slope * n) ** 2 for n, s in zip(sizes, seconds, strict=True)) / 4
    assert (fit.per_photo_s, fit.fixed_s) == pytest.approx((slope, intercept))
    assert fit.per_photo_stderr_s == pytest.approx(float(np.sqrt(covariance[0, 0] * residual_variance)))


def test_two_sizes_fit_without_an_error_estimate_and_one_size_does_not_fit() -> None:
    assert bench.fit_line([(32, 10.0), (64, 18.0)]).per_photo_stderr_s is None
    with pytest.raises(ValueError, match="two sizes"):
        bench.fit_line([(64, 20.0), (64, 21.0)])


def _result(count: int, job_wall: float, job_cpu: float, loop_walls: list[float], loop_cpus: list[float],
            photos: int | None = None) -> dict[str, Any]:
    return {"count": count, "load_average": {},
            "loop_runs": [{"total": wall, "cpu": cpu, "stages": {}}
                          for wall, cpu in zip(loop_walls, loop_cpus, strict=True)],
            "dask_2": {"total": job_wall, "cpu": job_cpu, "photos": count if photos is None else photos,
                       "loop_totals": loop_walls, "loop_cpus": loop_cpus}}


def test_steady_state_separates_a_jobs_start_up_from_its_rate() -> None:
    # A job with 10 s of start-up (6 s CPU) at 0.2 s (0.4 CPU s) per photo, beside a loop at 0.3 s and
    # 0.3 CPU s per photo with no start-up: 1.5x the loop's throughput in wall, 0.75x in CPU at steady state.
    results = [_result(n, 10 + 0.2 * n, 6 + 0.4 * n, [0.3 * n] * 2, [0.3 * n] * 2) for n in (32, 64, 128)]
    points = bench.path_points(results)
    assert len(points["loop"]) == 6 and len(points["dask_2"]) == 3
    summary = bench.steady_state(points["dask_2"])
    assert summary["wall"]["fixed_s"] == pytest.approx(10.0)
    assert summary["wall"]["photos_per_s"] == pytest.approx(5.0)
    assert summary["cpu"]["fixed_s"] == pytest.approx(6.0)
    assert summary["steady_ratio"] == pytest.approx({"wall": 1.5, "cpu": 0.75})
    assert summary["raw_ratio"][0] == pytest.approx({"photos": 32, "wall": 9.6 / 16.4, "cpu": 9.6 / 18.8})
    # Measured by the loop beside each run instead: the same ratio, and 10 s of start-up is 33 loop photos.
    assert summary["relative"]["wall"] == pytest.approx({"steady_ratio": 1.5, "start_up_loop_photos": 10 / 0.3})
    assert "steady_ratio" not in bench.steady_state(points["loop"])


def test_relative_fit_cancels_load_that_slows_job_and_loop_alike() -> None:
    # The same job as above, but the machine is twice as slow during the 64-photo pair of runs.
    slowdown = {32: 1.0, 64: 2.0, 128: 1.0}
    runs = [(n, slowdown[n] * (10 + 0.2 * n), slowdown[n] * 0.3 * n) for n in (32, 64, 128)]
    assert bench.relative_fit(runs) == pytest.approx({"steady_ratio": 1.5, "start_up_loop_photos": 10 / 0.3})
    absolute = bench.fit_line([(n, job) for n, job, _ in runs])
    assert absolute.per_photo_s != pytest.approx(0.2, rel=0.2)


def test_a_job_that_lost_photos_is_not_fitted() -> None:
    with pytest.raises(ValueError, match="63 photos"):
        bench.path_points([_result(64, 20.0, 20.0, [19.0, 21.0], [19.0, 21.0], photos=63)])
