"""A Dask worker is SIGKILLed mid-job: the extraction job still completes, with the same committed output.

A real scheduler and two single-threaded worker processes (infra/dask_cluster.py) run the job through Beam's
DaskRunner over real photos (faces and vehicles, all three model families) plus two uploads that must become dead
letters. Once the model stage has written its first crops, and while fewer than half of them exist, the worker
holding the most task results is killed with SIGKILL and a replacement is started, as an orchestrator would.

What holds, and why: the DaskRunner keeps no state on the workers beyond Dask task results (a Beam bundle is one
Dask partition task, its outputs returned whole), so the scheduler recomputes what the dead worker held or was
running; the re-run tasks rewrite the same thumbnail, crop and Parquet keys with the same bytes, and the
launcher commits only after `wait_until_finish()` and `verify_run`. The committed run must equal a clean
DirectRunner reference (photos and dead letters exactly but for `run_id`; detections with the same ids, boxes and
scores within 1e-3, embeddings within 1e-5), with no duplicate ids, nothing missing, no stray derived objects, and
a re-launch finding nothing left to do.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from distributed import Client
from minio import Minio

from beam_jobs.pipeline.catalog import load_state, read_committed
from beam_jobs.pipeline.launcher import RunSummary, run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from infra import dask_cluster
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from tests.beam_jobs.pipeline.conftest import put_evidence

pytestmark = pytest.mark.integration
FAMILIES = ["faces", "objects", "plates"]
NPARTITIONS = 8  # one or two photos per Dask task: many small tasks, so the victim holds finished and running ones


@dataclass
class Monitored:
    """What the watcher saw: the kill, and the job's outcome from its thread."""

    crops_at_kill: int = -1
    victim: str = ""
    victim_results_in_memory: int = 0
    victim_processing: int = 0
    summary: RunSummary | None = None
    error: BaseException | None = None


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dask_cluster.LocalDaskCluster]:
    started = dask_cluster.start(tmp_path / "dask", port=dask_cluster.free_port(), workers=2, nthreads=1)
    try:
        yield started
    finally:
        dask_cluster.stop(started.data_dir)


def job_settings(s3: S3Settings, *, workload: str, run: str) -> ExtractSettings:
    """Buckets of its own for each run, derived included: crops counted there are this run's progress."""
    buckets = BucketNames(evidence=f"wl-evidence-{workload}", derived=f"wl-derived-{workload}-{run}",
                          catalog=f"wl-catalog-{workload}-{run}")
    return ExtractSettings.from_mapping({"s3": s3.model_copy(update={"buckets": buckets}), "num_shards": 2,
                                         "extract_models": FAMILIES})


def upload_workload(client: Minio, bucket: str, shared_data: Path, per_folder: int) -> int:
    """Real photos plus one unreadable upload and one manifest whose original is missing; returns the count."""
    names = [f"{folder}/{path.name}" for folder in ("faces", "vehicles")
             for path in sorted((shared_data / folder).glob("*.jpg"))[:per_folder]]
    for name in names:
        put_evidence(client, bucket, name=name, data=(shared_data / name).read_bytes())
    put_evidence(client, bucket, name="noise", data=random.Random(11).randbytes(5000))
    put_evidence(client, bucket, name="never-stored", data=b"lost before upload", store=False)
    return len(names) + 2


def count_objects(client: Minio, bucket: str, prefix: str) -> int:
    return sum(1 for _ in client.list_objects(bucket, prefix=prefix, recursive=True))


def rows_by(table: pa.Table, key: str, *, drop: tuple[str, ...] = ("run_id",)) -> dict[str, dict[str, Any]]:
    """Rows keyed by `key`, without the columns that name the run; fails on a duplicate key."""
    rows = table.drop_columns([name for name in drop if name in table.column_names]).to_pylist()
    keyed = {str(row[key]): row for row in rows}
    assert len(keyed) == len(rows), f"duplicate {key} values in the committed table"
    return keyed


def assert_same_detection(got: dict[str, Any], want: dict[str, Any]) -> None:
    for name in ("photo_id", "kind", "model_name", "model_version", "crop_key"):
        assert got[name] == want[name], name
    assert got["box"] == pytest.approx(want["box"], abs=1e-3)
    assert got["score"] == pytest.approx(want["score"], abs=1e-3)
    got_attributes, want_attributes = json.loads(got["attributes"]), json.loads(want["attributes"])
    assert got_attributes.keys() == want_attributes.keys()
    for name, value in want_attributes.items():
        if isinstance(value, float):
            assert got_attributes[name] == pytest.approx(value, abs=1e-3), name
        else:
            assert got_attributes[name] == value, name
    if want["embedding"] is None:
        assert got["embedding"] is None
    else:
        assert np.allclose(got["embedding"], want["embedding"], atol=1e-5)


def kill_busiest_worker(monitor: Client, data_dir: Path, seen: Monitored) -> None:
    """SIGKILL the worker holding the most finished task results among those running a task."""
    processing, holding = monitor.processing(), monitor.has_what()
    names = {address: info["name"] for address, info in monitor.scheduler_info()["workers"].items()}
    busy = [address for address in names if processing.get(address)]
    victim = max(busy or names, key=lambda address: len(holding.get(address, ())))
    seen.victim, seen.victim_processing = names[victim], len(processing.get(victim, ()))
    seen.victim_results_in_memory = len(holding.get(victim, ()))
    os.kill(dask_cluster.worker_pids(data_dir)[names[victim]], signal.SIGKILL)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("per_folder", [4, pytest.param(12, marks=pytest.mark.slow)])
def test_worker_killed_mid_job_same_output(
    per_folder: int, cluster: dask_cluster.LocalDaskCluster, s3_settings: S3Settings, shared_data: Path
) -> None:
    """CI: 4 face + 4 vehicle photos (about 45 s here); nightly (`-m slow`): 12 + 12."""
    reference = job_settings(s3_settings, workload=str(per_folder), run="reference")
    on_dask = job_settings(s3_settings, workload=str(per_folder), run="dask")
    client = build_client(s3_settings)
    for settings in (reference, on_dask):
        ensure_buckets(client, settings.s3)
    uploads = upload_workload(client, reference.s3.buckets.evidence, shared_data, per_folder)

    clean = run_extract(reference, runner="DirectRunner")
    expected_crops = clean.rows("detections")
    assert expected_crops >= 10, "the workload must give the model stage enough to do"

    seen = Monitored()

    def run_on_dask() -> None:
        try:
            seen.summary = run_extract(on_dask, runner="DaskRunner", beam_args=[
                f"--dask_client_address={cluster.address}", f"--dask_npartitions={NPARTITIONS}"])
        except BaseException as error:  # handed to the test thread, which re-raises it
            seen.error = error

    job = threading.Thread(target=run_on_dask, name="dask-job")
    derived = on_dask.s3.buckets.derived
    with Client(cluster.address, timeout=10) as monitor:
        job.start()
        while job.is_alive():
            crops = count_objects(client, derived, "crops/")
            if crops > 0:  # the model stage is producing: the job is mid-way through its slowest stage
                seen.crops_at_kill = crops
                kill_busiest_worker(monitor, cluster.data_dir, seen)
                dask_cluster.add_worker(cluster.data_dir, port=cluster.port, index=2)
                monitor.wait_for_workers(2, timeout=60)
                break
            time.sleep(0.05)
        job.join(timeout=240)
    assert not job.is_alive(), "the job did not finish after the worker was killed"
    if seen.error is not None:
        raise seen.error
    assert 0 < seen.crops_at_kill <= expected_crops // 2, f"not killed mid-job: {seen}"
    assert seen.victim_processing > 0
    assert seen.summary is not None and seen.summary.run_id is not None
    print(f"\nkilled {seen.victim} with {seen.victim_results_in_memory} task results in memory and "
          f"{seen.victim_processing} tasks assigned, at {seen.crops_at_kill}/{expected_crops} crops; "
          f"clean DirectRunner {clean.seconds:.1f} s, Dask with the kill {seen.summary.seconds:.1f} s")

    catalog = on_dask.s3.buckets.catalog
    state = load_state(client, catalog)
    assert state.runs == (seen.summary.run_id,) and len(state.processed) == uploads
    for table, key in (("photos", "photo_id"), ("detections", "detection_id")):
        got = rows_by(read_committed(client, catalog, table), key)
        want = rows_by(read_committed(client, reference.s3.buckets.catalog, table), key)
        assert seen.summary.rows(table) == len(got), f"duplicate {table} rows in the committed parts"
        assert got.keys() == want.keys(), f"{table}: missing or extra rows"
        for record_id, row in want.items():
            if table == "photos":
                assert got[record_id] == row
            else:
                assert_same_detection(got[record_id], row)
    dead = rows_by(read_committed(client, catalog, "dead_letters"), "object_key")
    assert dead == rows_by(read_committed(client, reference.s3.buckets.catalog, "dead_letters"), "object_key")
    assert len(dead) == 2 and seen.summary.rows("photos") + len(dead) == uploads

    # Re-run tasks overwrote the same keys: one crop per detection, one thumbnail per photo, nothing else.
    assert count_objects(client, derived, "crops/") == expected_crops
    assert count_objects(client, derived, "thumbnails/") == clean.rows("photos")
    again = run_extract(on_dask, runner="DaskRunner", beam_args=[f"--dask_client_address={cluster.address}"])
    assert again.run_id is None and again.manifests == 0
