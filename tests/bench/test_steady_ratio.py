"""bench/steady_ratio.py: the three steady-state ratio estimates and their standard errors, on made-up runs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.bench.scripts import load_script

ratio = load_script("steady_ratio")


def _result(count: int, job_cpu: float, loop_cpus: list[float], photos: int | None = None) -> dict[str, Any]:
    return {"count": count,
            "loop_runs": [{"total": cpu, "cpu": cpu, "stages": {}} for cpu in loop_cpus],
            "dask_1": {"total": job_cpu, "cpu": job_cpu, "photos": count if photos is None else photos,
                       "loop_totals": loop_cpus, "loop_cpus": loop_cpus}}


def test_fit_gives_numpys_least_squares_and_both_standard_errors() -> None:
    xs, ys = [48, 48, 96, 96, 192, 192], [18.0, 20.5, 36.0, 39.0, 70.0, 74.5]
    line = ratio.fit(list(zip(xs, ys, strict=True)))
    (slope, intercept), covariance = np.polyfit(xs, ys, 1, cov=True)  # cov=True: scaled by residual / (n - 2)
    assert (line.slope, line.intercept) == pytest.approx((slope, intercept))
    assert line.slope_se == pytest.approx(float(np.sqrt(covariance[0, 0])))
    assert line.intercept_se == pytest.approx(float(np.sqrt(covariance[1, 1])))


def test_two_points_fit_without_errors_and_one_size_does_not_fit() -> None:
    line = ratio.fit([(48, 20.0), (96, 38.0)])
    assert line.slope == pytest.approx(0.375) and line.slope_se is None and line.intercept_se is None
    with pytest.raises(ValueError, match="two distinct"):
        ratio.fit([(96, 36.0), (96, 37.0)])


def test_exact_runs_give_the_true_ratio_in_all_three_estimates_with_no_spread() -> None:
    # Loop 0.35 s per photo, no start-up; job 3 s of start-up and 0.35 / 0.9 s per photo: ratio 0.9.
    per_photo = 0.35 / 0.9
    results = [_result(n, 3 + per_photo * n, [0.35 * n] * 3) for n in (48, 96, 192) for _ in range(2)]
    fitted = ratio.estimate(results, "dask_1")
    for name in ("absolute", "paired", "relative"):
        assert fitted["ratio"][name]["value"] == pytest.approx(0.9), name
        assert fitted["ratio"][name]["stderr"] == pytest.approx(0.0, abs=1e-9), name
    assert fitted["relative_start_up_loop_photos"] == pytest.approx(3 / 0.35)
    assert fitted["extra"]["slope"] == pytest.approx(per_photo - 0.35)


def test_paired_and_relative_estimates_cancel_drift_that_moves_job_and_loop_alike() -> None:
    # The machine is 15 % slower during one 192-photo pair and 10 % faster during one 48-photo pair.
    drift = {(48, 0): 0.9, (48, 1): 1.0, (96, 0): 1.0, (96, 1): 1.0, (192, 0): 1.15, (192, 1): 1.0}
    per_photo = 0.35 / 0.9
    results = [_result(n, drift[n, k] * per_photo * n, [drift[n, k] * 0.35 * n] * 3)
               for n in (48, 96, 192) for k in (0, 1)]
    fitted = ratio.estimate(results, "dask_1")
    assert fitted["ratio"]["relative"]["value"] == pytest.approx(0.9)
    assert fitted["ratio"]["relative"]["stderr"] == pytest.approx(0.0, abs=1e-9)
    assert fitted["ratio"]["paired"]["value"] == pytest.approx(0.9, abs=0.01)
    assert fitted["ratio"]["absolute"]["stderr"] > 3 * fitted["ratio"]["paired"]["stderr"]


def test_ratio_error_follows_the_delta_method() -> None:
    loop = ratio.Line(intercept=0.0, slope=0.35, intercept_se=None, slope_se=0.01, points=6)
    job = ratio.Line(intercept=3.0, slope=0.40, intercept_se=None, slope_se=0.02, points=6)
    absolute = ratio.absolute_ratio(loop, job)
    assert absolute.value == pytest.approx(0.875)
    assert absolute.stderr == pytest.approx(0.875 * ((0.01 / 0.35) ** 2 + (0.02 / 0.40) ** 2) ** 0.5)
    assert ratio.absolute_ratio(loop, ratio.Line(3.0, 0.40, None, None, 2)).stderr is None


def test_a_job_that_lost_photos_is_not_fitted() -> None:
    with pytest.raises(ValueError, match="95 photos"):
        ratio.collect([_result(96, 38.0, [34.0, 35.0], photos=95)], "dask_1", "cpu")
