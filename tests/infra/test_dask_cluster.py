"""The local Dask cluster script: starts on loopback only, runs work, stops every process it started."""

from __future__ import annotations

import os
from pathlib import Path

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
