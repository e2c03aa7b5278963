"""A runner's steady-state CPU (or wall) ratio to the plain loop, with its standard error, from bench/extract.py runs.

`bench/extract.py --fit` fits each path's seconds = fixed + per_photo x N and divides the slopes, but gives an
error only for each slope. On the shared 2-core machine a job's CPU moves +-10 % within minutes, so the ratio needs
its own uncertainty, and estimators that let the loop run beside each job cancel that drift. Three, over the same
runs (`job` = a runner's run at N photos, `beside` = the mean of the loop runs just before and after it):

- absolute: loop_per_photo / job_per_photo, each fitted over all its runs; error by the delta method with the two
  fits independent (drift common to both would only shrink it).
- paired: extra = job - beside per run, fitted as extra_fixed + extra_per_photo x N; the ratio is
  loop_per_photo / (loop_per_photo + extra_per_photo). Drift that moves a job and its loop alike cancels per run.
- relative: job / beside = 1 / ratio + start_up / N (as bench/extract.py's relative fit), the ratio from the
  intercept, with the intercept's standard error.

Standard errors are ordinary least squares ones (residual variance, n - 2 degrees of freedom): they assume the runs
scatter independently around the line, which alternating the paths and the sizes is meant to make true.

    .venv/bin/python bench/steady_ratio.py docs/bench/bench-extract-dask-steady-*-2026-12-07.json \
        --paths dask_1,dask_2 --out docs/bench/bench-extract-dask-steady-fit-2026-12-07.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

GOAL = 0.9


@dataclass(frozen=True)
class Line:
    """y = intercept + slope x by least squares, with both standard errors (None with no spare degree of freedom)."""

    intercept: float
    slope: float
    intercept_se: float | None
    slope_se: float | None
    points: int


@dataclass(frozen=True)
class Estimate:
    value: float
    stderr: float | None

    def text(self, digits: int = 2) -> str:
        spread = f" +-{self.stderr:.{digits}f}" if self.stderr is not None else ""
        return f"{self.value:.{digits}f}{spread}"


@dataclass(frozen=True)
class RunPoint:
    """One job run: photos, its seconds, and the mean seconds of the loop runs on either side of it."""

    photos: int
    job_s: float
    beside_s: float


def fit(points: Sequence[tuple[float, float]]) -> Line:
    """Ordinary least squares through (x, y); needs two distinct x at least."""
    xs, ys = [float(x) for x, _ in points], [float(y) for _, y in points]
    if len(set(xs)) < 2:
        raise ValueError(f"a line needs two distinct x at least, got {sorted(set(xs))}")
    slope, intercept = statistics.linear_regression(xs, ys)
    spare = len(xs) - 2
    if spare == 0:
        return Line(intercept, slope, None, None, len(xs))
    mean_x = statistics.fmean(xs)
    spread_x = sum((x - mean_x) ** 2 for x in xs)
    variance = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True)) / spare
    slope_se = (variance / spread_x) ** 0.5
    intercept_se = (variance * (1 / len(xs) + mean_x**2 / spread_x)) ** 0.5
    return Line(intercept, slope, intercept_se, slope_se, len(xs))


def _combined(*terms: float | None) -> float | None:
    return None if any(term is None for term in terms) else sum(term**2 for term in terms if term is not None) ** 0.5


def absolute_ratio(loop: Line, job: Line) -> Estimate:
    """loop per-photo seconds / job's; relative errors added in quadrature."""
    ratio = loop.slope / job.slope
    relative = _combined(None if loop.slope_se is None else loop.slope_se / loop.slope,
                         None if job.slope_se is None else job.slope_se / job.slope)
    return Estimate(ratio, None if relative is None else ratio * relative)


def paired_ratio(loop: Line, runs: Sequence[RunPoint]) -> tuple[Estimate, Line]:
    """loop / (loop + extra) with extra per photo fitted over job - beside per run; also that extra fit."""
    extra = fit([(run.photos, run.job_s - run.beside_s) for run in runs])
    per_photo = loop.slope + extra.slope
    ratio = loop.slope / per_photo
    # d ratio / d extra = -loop / per_photo^2; d ratio / d loop = extra / per_photo^2
    stderr = _combined(None if extra.slope_se is None else loop.slope * extra.slope_se / per_photo**2,
                       None if loop.slope_se is None else extra.slope * loop.slope_se / per_photo**2)
    return Estimate(ratio, stderr), extra


def relative_ratio(runs: Sequence[RunPoint]) -> tuple[Estimate, float]:
    """1 / intercept of job / beside against 1 / N; also the start-up in loop photos (the slope)."""
    line = fit([(1.0 / run.photos, run.job_s / run.beside_s) for run in runs])
    ratio = 1.0 / line.intercept
    return Estimate(ratio, None if line.intercept_se is None else line.intercept_se / line.intercept**2), line.slope


def collect(results: Iterable[Mapping[str, Any]], path: str, kind: str) -> tuple[list[tuple[int, float]],
                                                                                   list[RunPoint]]:
    """Every loop run (photos, seconds) and every run of `path` with its loop beside, `kind` "cpu" or "wall"."""
    job_key, beside_key = ("cpu", "loop_cpus") if kind == "cpu" else ("total", "loop_totals")
    loops: list[tuple[int, float]] = []
    runs: list[RunPoint] = []
    for result in results:
        count = int(result["count"])
        loops += [(count, float(run[job_key])) for run in result.get("loop_runs", [])]
        job = result.get(path)
        if job is None or beside_key not in job:
            continue
        if job["photos"] != count:
            raise ValueError(f"{path} at {count}: {job['photos']} photos written, not {count}")
        runs.append(RunPoint(count, float(job[job_key]), statistics.fmean(job[beside_key])))
    return loops, runs


def estimate(results: Sequence[Mapping[str, Any]], path: str, kind: str = "cpu") -> dict[str, Any]:
    """The loop's and `path`'s fitted seconds per photo and the three ratio estimates, as plain data."""
    loop_points, runs = collect(results, path, kind)
    loop, job = fit(loop_points), fit([(run.photos, run.job_s) for run in runs])
    paired, extra = paired_ratio(loop, runs)
    relative, start_up = relative_ratio(runs)
    return {"path": path, "kind": kind, "loop": asdict(loop), "job": asdict(job), "extra": asdict(extra),
            "ratio": {"absolute": asdict(absolute_ratio(loop, job)), "paired": asdict(paired),
                      "relative": asdict(relative)},
            "relative_start_up_loop_photos": start_up,
            "raw": [asdict(run) | {"ratio": run.beside_s / run.job_s} for run in runs]}


def summary_line(fitted: Mapping[str, Any]) -> str:
    def per_photo(line: Mapping[str, Any]) -> str:
        return Estimate(line["slope"], line["slope_se"]).text(3)

    ratios = "  ".join(f"{name} {Estimate(**value).text()}" for name, value in fitted["ratio"].items())
    return (f"{fitted['path']:<22} {fitted['kind']:<4} s/photo: loop {per_photo(fitted['loop'])}, "
            f"job {per_photo(fitted['job'])}, extra {per_photo(fitted['extra'])} | ratio {ratios}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="bench/extract.py result JSON files, any sizes")
    parser.add_argument("--paths", default="dask_1,dask_2", help="comma-separated runners in those files")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    results = [json.loads(path.read_text()) for path in args.results]
    fitted = [estimate(results, path, kind) for path in args.paths.split(",") if path for kind in ("cpu", "wall")]
    for entry in fitted:
        print(summary_line(entry))
    if args.out:
        args.out.write_text(json.dumps({"inputs": [str(path) for path in args.results], "goal": GOAL,
                                        "fits": fitted,
                                        "load_average": {str(path): result.get("load_average")
                                                         for path, result in zip(args.results, results, strict=True)}},
                                       indent=2))
        print(f"fit in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
