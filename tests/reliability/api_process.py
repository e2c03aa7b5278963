"""`witness serve` as its own process, as the kill tests drive it, and the checks that a photo is stored once.

Shared by `test_api_kill.py` (killed mid-request, the moment read from the spool and the bucket) and
`test_api_crash_point.py` (killed at a named crash point, `infra.faults`).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from minio import Minio
from minio.error import S3Error

from infra.storage.evidence import manifest_key, original_key
from ingest_api.settings import ApiSettings
from tests.ingest_api.conftest import RunningApi

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ApiProcess:
    api: RunningApi
    process: subprocess.Popen[bytes]


def api_environment(settings: ApiSettings) -> dict[str, str]:
    """The `WITNESS_*` variables that make `witness serve` the API `settings` describes (nothing else leaks in)."""
    inherited = {key: value for key, value in os.environ.items() if not key.startswith("WITNESS_")}
    return inherited | {
        "WITNESS_STATE_DIR": str(settings.state_dir),
        "WITNESS_PORT": str(settings.port),
        "WITNESS_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
        "WITNESS_S3__ENDPOINT": settings.s3.endpoint,
        "WITNESS_S3__EVIDENCE_RETENTION_DAYS": str(settings.s3.evidence_retention_days),
    }


@contextmanager
def api_process(settings: ApiSettings, event_id: str, log_path: Path,
                extra_environment: Mapping[str, str] | None = None) -> Iterator[ApiProcess]:
    """`witness serve` as a child process until it answers /healthz; killed (if still alive) after the block."""
    witness = Path(sys.executable).with_name("witness")
    with log_path.open("ab") as log:
        process = subprocess.Popen([str(witness), "serve"], stdout=log,
                                   env=api_environment(settings) | dict(extra_environment or {}),
                                   stderr=subprocess.STDOUT)
    base_url = f"http://{settings.host}:{settings.port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"witness serve exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"witness serve did not answer within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield ApiProcess(RunningApi(base_url, settings, event_id), process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def sigkill(running: ApiProcess) -> None:
    os.kill(running.process.pid, signal.SIGKILL)
    assert running.process.wait(timeout=30) == -signal.SIGKILL


def original_stored(client: Minio, bucket: str, sha256: str) -> bool:
    try:
        client.stat_object(bucket, original_key(sha256))
    except S3Error as error:
        if error.code in {"NoSuchKey", "NoSuchObject"}:
            return False
        raise
    return True


def versions_of(client: Minio, bucket: str, key: str) -> int:
    return sum(1 for item in client.list_objects(bucket, prefix=key, include_version=True) if item.object_name == key)


def assert_stored_once(client: Minio, bucket: str, data: bytes, receipt: dict[str, str]) -> int:
    """The receipt names `data`, whose original is stored once and re-hashes to it; returns the manifest's
    version count (a finalisation re-run after a crash may write the manifest again, with its own received_at)."""
    sha256 = hashlib.sha256(data).hexdigest()
    assert (receipt["sha256"], receipt["size"]) == (sha256, len(data))
    key = original_key(sha256)
    assert versions_of(client, bucket, key) == 1, "exactly one version of the original"
    response = client.get_object(bucket, key)
    try:
        assert hashlib.sha256(response.read()).hexdigest() == sha256
    finally:
        response.close()
        response.release_conn()
    manifest = manifest_key(event_id=receipt["event_id"], submission_id=receipt["submission_id"], sha256=sha256)
    manifests = versions_of(client, bucket, manifest)
    assert manifests >= 1, "the submission manifest is stored"
    return manifests


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of `data` as the API names originals by it."""
    return hashlib.sha256(data).hexdigest()
