"""The production compose file is valid Compose and configures the API through our own settings class."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ingest_api.settings import ApiSettings

COMPOSE = Path(__file__).resolve().parents[2] / "infra" / "compose" / "compose.yaml"
SECRETS = {
    "WITNESS_S3_SECRET": "a-real-secret",
    "WITNESS_RECEIPT_KEY": "a-real-receipt-key",
    "WITNESS_CONTACT_KEY": "cmVhbC1jb250YWN0LWtleS0zMi1ieXRlcy1sb25nLi4=",
    "WITNESS_METRICS_TOKEN": "a-scraper-token",
    "POSTGRES_PASSWORD": "pg-secret",
    "PATH": "/usr/bin:/bin",
}


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose (Debian package) is needed to validate the compose file; .ci/run installs it")
    return subprocess.run([binary, "-f", str(path), "config"], capture_output=True, text=True, env=SECRETS, check=False)


def test_compose_file_validates_against_the_compose_schema() -> None:
    result = _compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr


def test_a_broken_compose_file_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE.read_text().replace("    depends_on:\n", "    depends_onn:\n", 1))
    result = _compose_config(broken)
    assert result.returncode != 0 and "depends_onn" in result.stderr


def test_evidence_bucket_is_created_with_object_lock() -> None:
    init = yaml.safe_load(COMPOSE.read_text())["services"]["minio-init"]["command"][0]
    assert "mc mb --ignore-existing --with-lock witness/evidence" in init
    assert "mc mb --ignore-existing --with-lock witness/audit" in init


def test_api_environment_is_accepted_by_the_settings_class(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = yaml.safe_load(_compose_config(COMPOSE).stdout)
    environment = rendered["services"]["api"]["environment"]
    for key in list(environment):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, str(value))
    settings = ApiSettings()
    assert settings.mode == "production" and settings.s3.endpoint == "minio:9000"
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.s3.evidence_retention_mode == "GOVERNANCE"
