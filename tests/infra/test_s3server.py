"""The local S3 server lifecycle: start, readiness, restart keeps data, wrong secrets are refused, stop."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from minio.error import S3Error
from pydantic import SecretStr

from infra import s3server
from infra.storage.client import build_client
from infra.storage.config import S3Settings

pytestmark = pytest.mark.integration


def wait_for_log(log: Path, label: str, timeout_s: float = 20.0) -> str:
    """The value after `label` in the server's log, once it has been printed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.strip().startswith(label):
                return line.split(label, 1)[1].strip()
        time.sleep(0.2)
    raise AssertionError(f"{label!r} never appeared in {log}")


def test_restart_keeps_data_and_wrong_secret_is_refused(tmp_path: Path) -> None:
    port = s3server.find_free_port_base()
    settings = S3Settings(endpoint=f"127.0.0.1:{port}")
    server = s3server.start(tmp_path, settings, s3_port=port)
    try:
        assert s3server.running_pid(tmp_path) == server.pid
        client = build_client(settings)
        client.make_bucket("keep")
        client.put_object("keep", "k", io.BytesIO(b"still here"), 10)
        # One volume per bucket, not SeaweedFS's default 7: a test run's hundreds of buckets must not exhaust them.
        assert len(list((tmp_path / "data").rglob("keep_*.dat"))) == 1
        # ... and may hold MAX_VOLUMES, not one per GiB of free disk (its start-up banner says which it took).
        assert wait_for_log(tmp_path / s3server.LOG_FILE, "Volume Count:") == str(s3server.MAX_VOLUMES)
        assert s3server.stop(tmp_path)
        assert s3server.running_pid(tmp_path) is None
        s3server.start(tmp_path, settings, s3_port=port)
        response = client.get_object("keep", "k")
        assert response.read() == b"still here"
        response.close()
        intruder = build_client(settings.model_copy(update={"secret_key": SecretStr("wrong-secret")}))
        with pytest.raises(S3Error) as refused:
            intruder.list_buckets()
        assert refused.value.code in {"SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"}
    finally:
        s3server.stop(tmp_path)
    assert not s3server.stop(tmp_path)


def test_a_server_can_be_given_larger_volumes(tmp_path: Path) -> None:
    """The ingest benchmark's server: a bucket's volume grows only at this size, so no growth stall mid-run."""
    port = s3server.find_free_port_base()
    s3server.start(tmp_path, S3Settings(endpoint=f"127.0.0.1:{port}"), s3_port=port, volume_size_limit_mb=3072)
    try:
        assert wait_for_log(tmp_path / s3server.LOG_FILE, "Volume Size:") == "3.00 GiB"
    finally:
        s3server.stop(tmp_path)
