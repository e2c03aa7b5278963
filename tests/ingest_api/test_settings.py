"""Settings: one object, read once; default secrets are refused outside local mode."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from ingest_api.settings import ApiSettings


def test_local_defaults_need_no_configuration() -> None:
    settings = ApiSettings.from_mapping({})
    assert settings.mode == "local" and settings.effective_database_url.startswith("sqlite:///")


def test_production_refuses_the_default_s3_secret() -> None:
    with pytest.raises(ValidationError, match="WITNESS_S3__SECRET_KEY"):
        ApiSettings.from_mapping({"mode": "production", "database_url": "postgresql+psycopg://db/witness"})


def test_production_requires_a_database_url() -> None:
    with pytest.raises(ValidationError, match="WITNESS_DATABASE_URL"):
        ApiSettings.from_mapping({"mode": "production", "s3": {"secret_key": "real"}})


def test_environment_uses_prefix_and_nested_delimiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WITNESS_S3__ENDPOINT", "minio.internal:9000")
    monkeypatch.setenv("WITNESS_MAX_UPLOAD_BYTES", "1234")
    settings = ApiSettings()
    assert settings.s3.endpoint == "minio.internal:9000" and settings.max_upload_bytes == 1234


def test_unknown_keys_are_refused_with_their_name() -> None:
    with pytest.raises(ValidationError, match="max_upload_megabytes"):
        ApiSettings.from_mapping({"max_upload_megabytes": 5})


def test_production_refuses_the_default_receipt_key() -> None:
    with pytest.raises(ValidationError, match="WITNESS_RECEIPT_KEY"):
        ApiSettings.from_mapping(
            {"mode": "production", "database_url": "postgresql+psycopg://db/witness", "s3": {"secret_key": "real"}}
        )


def test_abuse_limits_are_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WITNESS_LIMITS__PER_IP", "5/second")
    assert ApiSettings().limits.per_ip == "5/second"


def test_the_console_map_uses_tiles_only_when_configured() -> None:
    from ingest_api.routes.console import console_config

    assert console_config(ApiSettings.from_mapping({})).tile_url == ""
    url = "https://tiles.example/{z}/{x}/{y}.png"
    assert console_config(ApiSettings.from_mapping({"console_tile_url": url})).tile_url == url


def test_production_requires_a_metrics_token() -> None:
    production = {"mode": "production", "database_url": "postgresql+psycopg://db/witness", "s3": {"secret_key": "real"},
                  "receipt_key": "a-real-receipt-key", "contact_key": base64.urlsafe_b64encode(bytes(32)).decode()}
    with pytest.raises(ValidationError, match="WITNESS_METRICS_TOKEN must be set"):
        ApiSettings.from_mapping(production)
    assert ApiSettings.from_mapping({**production, "metrics_token": "scraper"}).metrics_token is not None
