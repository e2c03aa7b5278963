"""Benchmark the extraction job: photos/s by stage in a plain loop vs the whole job on each runner.

Starts its own SeaweedFS server (and, for the Dask rows, a local Dask cluster) in a temp folder on 127.0.0.1,
uploads real photos of ../shared/data (faces/, vehicles/ and exif/, spread evenly, repeated to --count) as
originals + manifests, one copy per measured path, then measures
  loop:  one process, the job's own functions per photo, each stage timed: read (manifest + original from S3),
         decode, EXIF (+ capture time, place), hash (SHA-256 + pHash), thumbnail, S3 writes (thumbnail, crops),
         each model family (detect + embed, batch 1, plates inside the vehicles found first) and crop encoding;
  job:   `run_extract` with the same families on DirectRunner in process, DirectRunner multi_processing x2, and
         the Dask cluster with 1 and 2 single-threaded workers (started beforehand and the job's modules
         imported on workers and scheduler, as on a standing cluster; model loading and each worker's first
         time-zone / place-name lookups count). Stage times inside the job come from sampling the threads that
         run bundles every 10 ms (in process; Dask workers sample themselves the same way, `Client.profile`,
         only in the `*_dask_defaults` runs: the cluster's QUIET_CONFIG turns that profiler off, and its CPU
         is counted), or from the job's own Beam metrics where the bundles run in subprocesses (multi_processing).
The loop runs first and again after every job path; each job is compared with the mean of the loop runs on either
side of it (the machine is shared and its load moves within minutes).

Steady state: run several --count values (one locked run each), then `--fit` their JSON files: for the loop and
each runner it fits seconds = fixed + per_photo x N (wall and CPU) over the sizes, so a job's one-off start-up
(worker processes, imports, model and table loads, graph submission) and its rate per photo are told apart. Each
runner's steady-state ratio is to the loop runs beside it, fitted the same way; `bench/steady_ratio.py` gives that
ratio with its standard error (and two estimators that cancel the drift between a job and its loop).

    .venv/bin/python bench/extract.py --count 64 --out docs/bench/bench-extract-models-2026-11-23.json
    .venv/bin/python bench/extract.py --count 8 --runs loop,dask_2          # quick look
    .venv/bin/python bench/extract.py --fit extract-32.json extract-64.json extract-128.json --out fit.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
from distributed import Client
from distributed import profile as sampling
from minio import Minio
from rich.console import Console
from rich.table import Table

from beam_jobs.extraction.capture_time import resolve_capture_time
from beam_jobs.extraction.decode import UnreadableImage, decode_image
from beam_jobs.extraction.exif import read_exif
from beam_jobs.extraction.hashing import phash_hex, sha256_hex
from beam_jobs.extraction.photo import extract_photo
from beam_jobs.extraction.places import place_name
from beam_jobs.extraction.thumbnails import make_thumbnail
from beam_jobs.models.base import Box
from beam_jobs.models.plates import PlateFamily
from beam_jobs.pipeline.detect import crop_jpeg, has_pixels, installed_families, load_families, rgb_pixels
from beam_jobs.pipeline.launcher import RunSummary, run_extract
from beam_jobs.pipeline.manifests import list_manifest_keys, parse_manifest
from beam_jobs.pipeline.settings import ExtractSettings
from infra import dask_cluster, s3server
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from infra.storage.objects import read_bytes, store_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "beam_jobs" / "pipeline"))
from conftest import put_evidence  # noqa: E402  (the tests' upload helper: same manifests as the API)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RUNS: dict[str, tuple[str, list[str], int]] = {  # name -> runner, flags, Dask workers (0: none)
    "direct": ("DirectRunner", [], 0),
    "multi_processing_x2": ("DirectRunner", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"], 0),
    "dask_1": ("DaskRunner", [], 1),
    "dask_2": ("DaskRunner", [], 2),
    "dask_1_dask_defaults": ("DaskRunner", [], 1),
    "dask_2_dask_defaults": ("DaskRunner", [], 2),
}
# Clusters with Dask's own configuration (profiler on: stage times) instead of dask_cluster.QUIET_CONFIG; not run
# unless named in --runs.
DASK_DEFAULTS_RUNS = {"dask_1_dask_defaults", "dask_2_dask_defaults"}
# where --model-threads applies (2 cores here)
ONE_PROCESS_PER_CORE = {"multi_processing_x2", "dask_2", "dask_2_dask_defaults"}
MODEL_FILES = {"models/faces.py": "model.faces", "models/objects.py": "model.objects",
               "models/plates.py": "model.plates", "models/plate_geometry.py": "model.plates",
               "models/plate_ranking.py": "model.plates"}
STAGE_FUNCTIONS = {"read_bytes": "read", "parse_manifest": "read", "decode_image": "decode", "read_exif": "exif",
                   "resolve_capture_time": "exif", "place_name": "exif", "sha256_hex": "hash", "phash_hex": "hash",
                   "make_thumbnail": "thumbnail", "store_bytes": "s3 write", "crop_jpeg": "crops",
                   "parquet_bytes": "parquet"}
# What runs inside these stages is theirs (the S3 reads that verify a write are the write).
STICKY = {"read", "s3 write", "crops", "parquet", "model load", *MODEL_FILES.values()}
SAMPLE_INTERVAL_S = 0.010
JOB_MODULES = ("apache_beam", "beam_jobs.pipeline.detect", "beam_jobs.pipeline.sinks", "beam_jobs.pipeline.transforms",
               "cv2", "onnxruntime", "rapidocr_onnxruntime")


def photo_files(count: int) -> list[Path]:
    """`count` photos spread evenly over faces/, vehicles/ and exif/ (cycled when count exceeds them)."""
    files = sorted(path for folder in ("faces", "vehicles", "exif") for path in (SHARED / folder).glob("*.jp*g"))
    step = max(1.0, len(files) / count)
    return [files[int(index * step) % len(files)] for index in range(count)]


def stage_of(description: dict[str, Any], current: str | None) -> str | None:
    """The stage a profiled frame belongs to: its own, or its caller's (innermost wins, except sticky stages)."""
    if current in STICKY:
        return current
    filename, name = str(description.get("filename", "")), str(description.get("name", ""))
    if name in ("load", "load_families") and ("/beam_jobs/models/" in filename or name == "load_families"):
        return "model load"
    for suffix, stage in MODEL_FILES.items():
        if filename.endswith(suffix):
            return stage
    if name in ("rgb_pixels", "detect_photo") and filename.endswith("pipeline/detect.py"):
        return "model glue (pixels to array, records)"
    if name in STAGE_FUNCTIONS and ("/beam_jobs/" in filename or "/infra/" in filename):
        return STAGE_FUNCTIONS[name]
    return current


def stage_seconds(tree: dict[str, Any], interval_s: float = SAMPLE_INTERVAL_S) -> dict[str, float]:
    """Seconds per stage from a `distributed.profile` tree: each sample goes to the stage of its innermost frame."""
    totals: dict[str, float] = defaultdict(float)

    def walk(node: dict[str, Any], current: str | None) -> None:
        stage = stage_of(node["description"], current) if isinstance(node["description"], dict) else current
        children = node["children"].values()
        own = node["count"] - sum(child["count"] for child in children)
        totals[stage or "runner (Beam, Dask, coders)"] += own * interval_s
        for child in children:
            walk(child, stage)

    walk(tree, None)
    return dict(totals)


@contextmanager
def sampled_bundles() -> Iterator[dict[str, Any]]:
    """Sample, every 10 ms, the threads of this process that are running a Beam bundle (same tree as Dask's)."""
    tree, stop = sampling.create(), threading.Event()

    def sample() -> None:
        me = threading.get_ident()
        while not stop.wait(SAMPLE_INTERVAL_S):
            for ident, frame in sys._current_frames().items():
                if ident != me and _in_bundle(frame):
                    sampling.process(frame, None, tree)

    sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
    sampler.start()
    try:
        yield tree
    finally:
        stop.set()
        sampler.join()


def _in_bundle(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.endswith("runners/worker/bundle_processor.py"):
            return True
        frame = frame.f_back
    return False


def warm_up(client: Minio, bucket: str, key: str, max_pixels: int) -> None:
    """One photo through every per-photo step, untimed: loads the time-zone map and place names once."""
    pending = parse_manifest(key, read_bytes(client, bucket, key))
    data = read_bytes(client, bucket, pending.object_key, pending.object_version)
    extract_photo(data, object_key=pending.object_key, event_id=pending.event_id,
                  submission_id=pending.submission_id, uploaded_at_utc=pending.received_at,
                  device_position=(52.37, 4.89), max_pixels=max_pixels)


def loop(settings: ExtractSettings, families: list[str]) -> dict[str, float]:
    """The job's per-photo work in a plain loop: seconds per stage, and `total` wall seconds.

    Warm: models and the time-zone map are loaded before the clock starts (in the job they load once per worker).
    """
    client, buckets = build_client(settings.s3), settings.s3.buckets
    models = load_families(families, settings.models_dir)
    totals: dict[str, float] = defaultdict(float)
    keys = sorted(list_manifest_keys(client, buckets.evidence))
    warm_up(client, buckets.evidence, keys[0], settings.max_pixels)
    started, cpu = time.perf_counter(), time.process_time()

    def timed(stage: str, since: float) -> float:
        now = time.perf_counter()
        totals[stage] += now - since
        return now

    for key in keys:
        t = time.perf_counter()
        pending = parse_manifest(key, read_bytes(client, buckets.evidence, key))
        data = read_bytes(client, buckets.evidence, pending.object_key, pending.object_version)
        t = timed("read", t)
        try:
            decoded = decode_image(data, max_pixels=settings.max_pixels)
        except UnreadableImage:
            continue
        image = rgb_pixels(decoded.image)
        t = timed("decode", t)
        exif = read_exif(data)
        resolve_capture_time(exif, lat=exif.lat, lon=exif.lon, uploaded_at_utc=pending.received_at)
        if exif.lat is not None and exif.lon is not None:
            place_name(exif.lat, exif.lon)
        t = timed("exif", t)
        sha256, _ = sha256_hex(data), phash_hex(decoded.image)
        t = timed("hash", t)
        thumbnail = make_thumbnail(decoded.image, max_side=settings.thumbnail_max_side)
        t = timed("thumbnail", t)
        store_bytes(client, buckets.derived, f"bench/{sha256}.jpg", thumbnail, "image/jpeg")
        t = timed("s3 write", t)
        vehicles: list[Box] = []
        for family in models:
            found = family.detect(image, vehicles=vehicles or None) if isinstance(family, PlateFamily) \
                else family.detect(image)
            found = [det for det in found if has_pixels(det.box, image.shape[1], image.shape[0])]  # as the job does
            if found and family.embedding_dim:
                family.embed(image, found)
            vehicles += [det.box for det in found if det.kind == "vehicle"]
            t = timed(f"model.{family.name}", t)
            crops = [crop_jpeg(image, det, settings.crop_max_side) for det in found]
            t = timed("crops", t)
            for index, crop in enumerate(crops):
                store_bytes(client, buckets.derived, f"bench/{sha256}-{family.name}-{index}.jpg", crop,
                            "image/jpeg")
            t = timed("s3 write", t)
    totals["total"], totals["cpu"] = time.perf_counter() - started, time.process_time() - cpu
    return dict(totals)


def job(settings: ExtractSettings, families: list[str], name: str, tmp: Path) -> dict[str, Any]:
    """One whole run of the job on runner `name`: wall and CPU seconds, row counts and stage seconds."""
    runner, flags, workers = RUNS[name]
    if not workers:
        cpu = cpu_seconds_here()
        with sampled_bundles() as tree:
            summary = run_extract(settings, runner=runner, beam_args=flags, models=families)
        stages = stage_seconds(tree) if not flags else metric_stages(summary)
        return described(summary, stages, cpu=cpu_seconds_here() - cpu)
    data_dir = tmp / f"dask-{name}"
    config = dask_cluster.DASK_DEFAULTS if name in DASK_DEFAULTS_RUNS else dask_cluster.QUIET_CONFIG
    cluster = dask_cluster.start(data_dir, port=dask_cluster.free_port(), workers=workers, nthreads=1, config=config)
    try:
        with Client(cluster.address, timeout=10) as client:
            # A standing cluster has imported the job's modules long before (the scheduler too: it unpickles the
            # graph); its first job has not.
            client.run(import_job_modules)
            client.run_on_scheduler(import_job_modules)
            code = set(client.run(job_code).values())
            cpu = cpu_seconds_here() + cluster_cpu_seconds(client)
            npartitions = 8 * workers  # several tasks per worker: the last one does not leave the other idle long
            started = time.time()
            summary = run_extract(settings, runner=runner, models=families, beam_args=[
                f"--dask_client_address={cluster.address}", f"--dask_npartitions={npartitions}"])
            cpu = cpu_seconds_here() + cluster_cpu_seconds(client) - cpu
            time.sleep(1.5)  # workers keep the profile of the current 1 s cycle to themselves until it ends
            tree = client.profile(start=started, stop=time.time())  # empty with the profiler off
        return described(summary, stage_seconds(tree), cpu=cpu, npartitions=npartitions, job_code=sorted(code))
    finally:
        dask_cluster.stop(data_dir)


def import_job_modules() -> None:
    for module in JOB_MODULES:
        importlib.import_module(module)


def job_code() -> str:
    """Where this process imports the job from (the "before" rows run a copy of the committed code)."""
    return str(Path(importlib.import_module("beam_jobs").__file__ or "").parent)


def cpu_seconds_here() -> float:
    """CPU seconds of this process (all its threads) and of its exited children (multi_processing's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def cluster_cpu_seconds(client: Client) -> float:
    def used() -> float:
        times = psutil.Process().cpu_times()
        return float(times.user + times.system)

    return sum(client.run(used).values()) + float(client.run_on_scheduler(used))


def metric_stages(summary: RunSummary) -> dict[str, float]:
    """Stage seconds from the job's Beam distributions (mean ms x count) where the bundles cannot be sampled."""
    names = {"read_ms": "read", "extract_ms": "decode + exif + hash + thumbnail", "write_derived_ms": "s3 write",
             "detect_ms": "models (all families, crops)"}
    return {stage: summary.metrics.get(f"{metric}.mean", 0.0) * summary.metrics.get(f"{metric}.count", 0.0) / 1000
            for metric, stage in names.items()}


def described(summary: RunSummary, stages: dict[str, float], **extra: Any) -> dict[str, Any]:
    return {"total": summary.seconds, "photos": summary.rows("photos"), "dead_letters": summary.rows("dead_letters"),
            "detections": summary.rows("detections"), "stages": stages, **extra}


def upload(base: S3Settings, name: str, files: list[Path], families: list[str], model_threads: int | None
           ) -> ExtractSettings:
    bucket = name.replace("_", "-")
    s3 = base.model_copy(update={"buckets": BucketNames(
        evidence=f"ev-{bucket}", derived=f"derived-{bucket}", catalog=f"cat-{bucket}")})
    threads = model_threads if name in ONE_PROCESS_PER_CORE else None
    settings = ExtractSettings.from_mapping({"s3": s3, "extract_models": families, "model_threads": threads})
    client = build_client(s3)
    ensure_buckets(client, s3)
    for index, path in enumerate(files):  # distinct submissions: every copy is its own photo
        put_evidence(client, s3.buckets.evidence, name=f"{index}-{path.name}", data=path.read_bytes())
    return settings


def mean_loop(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean total, CPU and stage seconds over the loop's runs."""
    stages = {stage for run in runs for stage in run["stages"]}
    return {"total": statistics.mean(run["total"] for run in runs), "cpu": statistics.mean(run["cpu"] for run in runs),
            "stages": {stage: statistics.mean(run["stages"].get(stage, 0.0) for run in runs) for stage in stages}}


def report(results: dict[str, Any], count: int) -> Table:
    """Per-photo ms of each stage (loop: mean of its runs; job: sampled or metric), photos/s, ratios to the loop.

    Each job's ratio is to the mean of the loop runs just before and after it: on a shared machine the load moves
    within minutes (a loop run of the same code took 33 s and 43 s ten minutes apart), one loop run is no yardstick.
    """
    names = [name for name in RUNS if name in results]
    table = Table(title=f"extraction, {count} photos, models: {', '.join(results['models']) or 'none'}")
    table.add_column("stage (ms/photo of worker time)")
    for column in ("loop", *names):
        table.add_column(column, justify="right")
    stages = sorted({stage for name in ("loop", *names) for stage in results[name].get("stages", {})} - {"total"})
    for stage in stages:
        table.add_row(stage, *(f"{1000 * results[name]['stages'].get(stage, 0.0) / count:.0f}"
                               for name in ("loop", *names)))
    table.add_row("whole run, wall s", *(f"{results[name]['total']:.1f}" for name in ("loop", *names)))
    table.add_row("photos/s", *(f"{count / results[name]['total']:.2f}" for name in ("loop", *names)))
    table.add_row("loop runs beside it, wall s", " ".join(f"{run['total']:.1f}" for run in results["loop_runs"]),
                  *(" ".join(f"{total:.1f}" for total in results[name]["loop_totals"]) for name in names))
    table.add_row("ratio to the loop beside it", "1.00",
                  *(f"{statistics.mean(results[name]['loop_totals']) / results[name]['total']:.2f}" for name in names))
    table.add_row("CPU s/photo", *(f"{results[name]['cpu'] / count:.2f}" for name in ("loop", *names)))
    table.add_row("ratio to the loop beside it, CPU", "1.00",
                  *(f"{statistics.mean(results[name]['loop_cpus']) / results[name]['cpu']:.2f}" for name in names))
    return table


@dataclass(frozen=True)
class LinearFit:
    """seconds = fixed_s + per_photo_s x N, least squares over runs of several sizes N.

    `per_photo_stderr_s` is the standard error of the slope (None with no spare degree of freedom): on a shared
    machine it says how far to trust the steady-state rate.
    """

    fixed_s: float
    per_photo_s: float
    per_photo_stderr_s: float | None

    @property
    def photos_per_s(self) -> float:
        return 1.0 / self.per_photo_s


def fit_line(points: Sequence[tuple[float, float]]) -> LinearFit:
    """Least-squares line through (photos, seconds) points; needs two sizes at least. Ordinary, unweighted."""
    sizes = [float(count) for count, _ in points]
    if len(set(sizes)) < 2:
        raise ValueError(f"a fit needs runs at two sizes at least, got sizes {sorted(set(sizes))}")
    seconds = [value for _, value in points]
    per_photo, fixed = statistics.linear_regression(sizes, seconds)
    spare = len(points) - 2
    stderr = None
    if spare > 0:
        residuals = sum((value - fixed - per_photo * size) ** 2 for size, value in zip(sizes, seconds, strict=True))
        mean_size = statistics.fmean(sizes)
        stderr = (residuals / spare / sum((size - mean_size) ** 2 for size in sizes)) ** 0.5
    return LinearFit(fixed_s=fixed, per_photo_s=per_photo, per_photo_stderr_s=stderr)


@dataclass(frozen=True)
class PathPoint:
    """One run of one path at `photos` photos: its wall and CPU seconds, and the loop's beside it (job runs)."""

    photos: int
    wall_s: float
    cpu_s: float
    loop_wall_s: float | None = None
    loop_cpu_s: float | None = None


def path_points(results: Iterable[dict[str, Any]]) -> dict[str, list[PathPoint]]:
    """Every run of the loop and of each runner in the given result files (JSON of one size each), by path."""
    points: dict[str, list[PathPoint]] = defaultdict(list)
    for result in results:
        count = int(result["count"])
        for run in result.get("loop_runs", []):
            points["loop"].append(PathPoint(count, run["total"], run["cpu"]))
        for name in RUNS:
            if name in result and "loop_totals" in result[name]:
                job_run = result[name]
                if job_run["photos"] != count:
                    raise ValueError(f"{name} at {count}: {job_run['photos']} photos written, not {count}")
                points[name].append(PathPoint(count, job_run["total"], job_run["cpu"],
                                              statistics.mean(job_run["loop_totals"]),
                                              statistics.mean(job_run["loop_cpus"])))
    return dict(points)


def steady_state(points: Sequence[PathPoint]) -> dict[str, Any]:
    """Fits of one path's wall and CPU seconds; for a job, also of the loop beside it, and the ratios loop / job.

    A ratio here is of throughputs (job / loop), i.e. the loop's seconds per photo over the job's: above 1 the job
    is faster. Raw ratios are per size, start-up included; steady-state ones are of the fitted slopes only.
    """
    wall = fit_line([(point.photos, point.wall_s) for point in points])
    cpu = fit_line([(point.photos, point.cpu_s) for point in points])
    summary: dict[str, Any] = {"wall": asdict(wall) | {"photos_per_s": wall.photos_per_s},
                               "cpu": asdict(cpu) | {"photos_per_s": cpu.photos_per_s}}
    beside = [point for point in points if point.loop_wall_s is not None and point.loop_cpu_s is not None]
    if beside:
        loop_wall = fit_line([(point.photos, point.loop_wall_s or 0.0) for point in beside])
        loop_cpu = fit_line([(point.photos, point.loop_cpu_s or 0.0) for point in beside])
        summary |= {"loop_beside": {"wall": asdict(loop_wall), "cpu": asdict(loop_cpu)},
                    "steady_ratio": {"wall": loop_wall.per_photo_s / wall.per_photo_s,
                                     "cpu": loop_cpu.per_photo_s / cpu.per_photo_s},
                    "raw_ratio": [{"photos": point.photos, "wall": (point.loop_wall_s or 0.0) / point.wall_s,
                                   "cpu": (point.loop_cpu_s or 0.0) / point.cpu_s} for point in beside],
                    "relative": {"wall": relative_fit([(p.photos, p.wall_s, p.loop_wall_s or 0.0) for p in beside]),
                                 "cpu": relative_fit([(p.photos, p.cpu_s, p.loop_cpu_s or 0.0) for p in beside])}}
    return summary


def relative_fit(runs: Sequence[tuple[int, float, float]]) -> dict[str, float]:
    """Steady-state ratio and start-up from (photos, job s, loop-beside s) runs, each job measured by its own loop.

    If job = fixed + per_photo x N and the warm loop = loop_per_photo x N, then job / loop = per_photo /
    loop_per_photo + (fixed / loop_per_photo) / N: a line in 1/N whose intercept is the inverse of the steady-state
    ratio and whose slope is the start-up in photos' worth of loop work. Load that slows job and loop alike
    cancels in each job / loop, which it does not in the two absolute fits.
    """
    fit = fit_line([(1.0 / photos, job_s / loop_s) for photos, job_s, loop_s in runs])
    return {"steady_ratio": 1.0 / fit.fixed_s, "start_up_loop_photos": fit.per_photo_s}


def fit_report(fits: dict[str, dict[str, Any]]) -> Table:
    """One row per path: fixed start-up, steady throughput, steady-state ratio to the loop, raw ratio per size."""
    sizes = sorted({raw["photos"] for fit in fits.values() for raw in fit.get("raw_ratio", [])})
    table = Table(title="extraction at steady state: seconds = fixed + per_photo x N (ratios: loop s / job s)")
    for column in ("path", "fixed s wall / CPU", "photos/s wall / CPU (+- 1 s.e.)", "steady ratio wall / CPU",
                   "relative fit: steady ratio, start-up (loop photos), wall / CPU",
                   *(f"raw ratio N={size}" for size in sizes)):
        table.add_column(column, justify="left" if column == "path" else "right")

    def rate(fit: dict[str, Any]) -> str:
        error = fit["per_photo_stderr_s"]
        spread = f" +-{error / fit['per_photo_s'] ** 2:.2f}" if error is not None else ""
        return f"{1 / fit['per_photo_s']:.2f}{spread}"

    def relative(fits: dict[str, dict[str, float]]) -> str:
        return " / ".join(f"{fits[kind]['steady_ratio']:.2f}, {fits[kind]['start_up_loop_photos']:.0f}"
                          for kind in ("wall", "cpu"))

    for name, fit in fits.items():
        raw: dict[int, str] = {}
        for point in fit.get("raw_ratio", []):  # several runs at one size: each, in order
            text = f"{point['wall']:.2f} / {point['cpu']:.2f}"
            raw[point["photos"]] = f"{raw[point['photos']]}; {text}" if point["photos"] in raw else text
        steady = fit.get("steady_ratio")
        table.add_row(name, f"{fit['wall']['fixed_s']:.1f} / {fit['cpu']['fixed_s']:.1f}",
                      f"{rate(fit['wall'])} / {rate(fit['cpu'])}",
                      f"{steady['wall']:.2f} / {steady['cpu']:.2f}" if steady else "1",
                      relative(fit["relative"]) if "relative" in fit else "-",
                      *(raw.get(size, "-") for size in sizes))
    return table


def fit_files(paths: Sequence[Path], out: Path, console: Console) -> int:
    """The `--fit` mode: steady-state fits over result files of several sizes, printed and written with the runs."""
    results = [json.loads(path.read_text()) for path in paths]
    points = path_points(results)
    fits = {name: steady_state(runs) for name, runs in points.items()}
    console.print(fit_report(fits))
    out.write_text(json.dumps({"inputs": [str(path) for path in paths], "fits": fits,
                               "runs": {name: [asdict(point) for point in runs] for name, runs in points.items()},
                               "load_average": {str(path): result["load_average"]
                                                for path, result in zip(paths, results, strict=True)}},
                              indent=2))
    console.print(f"fit in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("--models", default=None, help="comma-separated families or 'none' (default: all installed)")
    default_runs = ["loop", *(name for name in RUNS if name not in DASK_DEFAULTS_RUNS)]
    parser.add_argument("--runs", default=",".join(default_runs),
                        help="which of: loop," + ",".join(RUNS))
    parser.add_argument("--model-threads", type=int, default=None,
                        help=f"WITNESS_MODEL_THREADS for {', '.join(sorted(ONE_PROCESS_PER_CORE))} (default: OpenCV's)")
    parser.add_argument("--out", type=Path, default=Path("bench-extract.json"))
    parser.add_argument("--fit", type=Path, nargs="+", metavar="RESULT_JSON",
                        help="measure nothing: fit fixed + per-photo seconds over earlier results of several --count")
    args = parser.parse_args(argv)
    if args.fit:
        return fit_files(args.fit, args.out, Console(width=200))
    families = [f for f in (args.models or "").split(",") if f and f != "none"] if args.models is not None \
        else list(installed_families(ExtractSettings.from_mapping({}).models_dir))
    runs = [name for name in args.runs.split(",") if name]
    console = Console()
    files = photo_files(args.count)
    results: dict[str, Any] = {"machine": platform.platform(), "count": args.count, "models": families,
                               "job_code": job_code(), "load_average": {"start": list(os.getloadavg())},
                               "model_threads": args.model_threads,
                               "files": [str(path.relative_to(SHARED)) for path in files]}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        port = s3server.find_free_port_base()
        base = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
        s3server.start(Path(tmp) / "s3", base, s3_port=port)
        try:
            loop_settings = upload(base, "loop", files, families, None) if "loop" in runs else None
            loop_runs: list[dict[str, Any]] = []

            def run_loop() -> dict[str, Any]:
                assert loop_settings is not None
                timings = loop(loop_settings, families)
                loop_runs.append({"total": timings.pop("total"), "cpu": timings.pop("cpu"), "stages": timings})
                console.log(f"loop: {loop_runs[-1]['total']:.1f} s")
                return loop_runs[-1]

            before = run_loop() if loop_settings else None
            for name in (name for name in runs if name != "loop"):
                settings = upload(base, name, files, families, args.model_threads)
                console.log(f"{name}: {args.count} photos uploaded, running")
                results[name] = job(settings, families, name, Path(tmp))
                console.log(f"{name}: {results[name]['total']:.1f} s")
                if before is not None:  # the loop again, right after: the job's yardstick is the mean of both
                    after = run_loop()
                    results[name] |= {"loop_totals": [before["total"], after["total"]],
                                      "loop_cpus": [before["cpu"], after["cpu"]]}
                    before = after
            if loop_runs:
                results["loop_runs"], results["loop"] = loop_runs, mean_loop(loop_runs)
        finally:
            s3server.stop(Path(tmp) / "s3")
    if "loop" in results:
        console.print(report(results, args.count))
    results["load_average"]["end"] = list(os.getloadavg())
    args.out.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
