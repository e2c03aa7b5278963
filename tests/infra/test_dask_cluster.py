"""The local Dask cluster script: starts on loopback only, runs work, stops every process it started."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from distributed import Client

from infra import dask_cluster


@pytest.mark.integration
def test_start_run_stop(tmp_path: Path) -> None:
    cluster = dask_cluster.start(tmp_path, port=dask_cluster.free_port(), workers=1, nthreads=1)
    try:
        assert cluster.address.startswith("127.0.0.1:") and len(cluster.pids) == 2
        with pytest.raises(dask_cluster.DaskClusterError, match="already runs"):
            dask_cluster.start(tmp_path, port=dask_cluster.free_port(), workers=1)
        with Client(cluster.address, timeout=10) as client:
            assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
            workers = client.scheduler_info()["workers"]
            assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
    finally:
        assert dask_cluster.stop(tmp_path) == 2
    assert dask_cluster.running_pids(tmp_path) == []
    for pid in cluster.pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_config_keys_become_the_variables_dask_reads() -> None:
    assert dask_cluster.config_environment({"distributed.admin.tick.interval": "1s",
                                            "distributed.worker.memory.monitor-interval": "1s"}) == {
        "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s", "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s"}
    assert dask_cluster.config_environment(dask_cluster.DASK_DEFAULTS) == {}


def _worker_settings(dask_worker: Any) -> tuple[bool, bool, float]:
    import dask

    return (bool(dask.config.get("distributed.worker.profile.enabled")), "profile" in dask_worker.periodic_callbacks,
            float(dask_worker._tick_interval))


def _scheduler_tick(dask_scheduler: Any) -> float:
    return float(dask_scheduler._tick_interval)


@pytest.mark.integration
@pytest.mark.parametrize(("config", "profiled", "tick_s"), [
    (dask_cluster.QUIET_CONFIG, False, 1.0), (dask_cluster.DASK_DEFAULTS, True, 0.02)], ids=["quiet", "dask-defaults"])
def test_every_process_starts_with_the_given_config(tmp_path: Path, config: dict[str, str], profiled: bool,
                                                    tick_s: float) -> None:
    cluster = dask_cluster.start(tmp_path, port=dask_cluster.free_port(), workers=1, config=config)
    try:
        with Client(cluster.address, timeout=10) as client:
            assert client.run_on_scheduler(_scheduler_tick) == pytest.approx(tick_s)
            dask_cluster.add_worker(tmp_path, port=cluster.port, index=1, config=config)  # a replacement too
            client.wait_for_workers(2, timeout=60)
            assert list(client.run(_worker_settings).values()) == [(profiled, profiled, pytest.approx(tick_s))] * 2
    finally:
        assert dask_cluster.stop(tmp_path) == 3
