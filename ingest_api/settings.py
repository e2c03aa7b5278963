"""The API deployable's one settings object (env prefix `WITNESS_`, nested keys with `__`).

    WITNESS_MODE=production WITNESS_S3__ENDPOINT=minio:9000 WITNESS_S3__SECRET_KEY=... \
    WITNESS_DATABASE_URL=postgresql+psycopg://... witness serve
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.storage.config import S3Settings

DEFAULT_STATE_DIR = Path(".witness")
# `npm ci` at the project root installs the upload page's browser libraries here (see package.json).
DEFAULT_NODE_MODULES = Path(__file__).resolve().parents[1] / "node_modules"
LOCAL_RECEIPT_KEY = "witness-local-receipt-key-change-me"
# 32 bytes, base64url: "witness-local-contact-key-change" (a real key: base64url of 32 random bytes).
LOCAL_CONTACT_KEY = "d2l0bmVzcy1sb2NhbC1jb250YWN0LWtleS1jaGFuZ2U="


def _decode_contact_key(text: str) -> bytes:
    """32 bytes given as base64url, e.g. `base64.urlsafe_b64encode(secrets.token_bytes(32))`."""
    try:
        key = base64.urlsafe_b64decode(text.encode("ascii") + b"=" * (-len(text) % 4))
    except (ValueError, UnicodeEncodeError) as error:
        raise ValueError(f"WITNESS_CONTACT_KEY is not base64url: {error}") from error
    if len(key) != 32:
        raise ValueError(f"WITNESS_CONTACT_KEY must decode to 32 bytes (AES-256), got {len(key)}")
    return key


class AbuseLimits(BaseModel):
    """Limits per client IP, per submission token and for the whole server (rates in `limits` notation)."""

    per_ip: str = Field(default="300/minute", description="requests per client IP, e.g. '300/minute'")
    per_token: str = Field(default="600/minute", description="requests per submission token")
    max_files_per_submission: int = Field(default=200, ge=1)
    max_bytes_per_submission: int = Field(default=4 * 1024**3, ge=1)
    max_open_uploads_per_submission: int = Field(default=12, ge=1, description="unfinished resumable uploads")
    max_concurrent_transfers: int = Field(default=64, ge=1, description="request bodies received at once")


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WITNESS_", env_nested_delimiter="__", extra="forbid")

    mode: Literal["local", "production"] = "local"
    state_dir: Path = Field(default=DEFAULT_STATE_DIR, description="local server data, spool files, SQLite")
    database_url: str = ""
    s3: S3Settings = S3Settings()
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    max_pixels: int = Field(default=250_000_000, ge=1, description="refuse decompression bombs above this")
    spool_memory_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    store_write_slots: int = Field(
        default=4, ge=0, description="originals this process writes to the store at once, the rest wait their turn "
        "(0: no limit); about the number of cores (or drives) the store writes with. See services/store_slots.py"
    )
    store_write_wait_s: float = Field(default=60.0, gt=0, description="an upload waiting longer for a write slot "
                                      "gets 503 Retry-After")
    public_url: str = Field(default="", description="base URL witnesses reach the API at (links, QR codes)")
    receipt_key: SecretStr = Field(default=SecretStr(LOCAL_RECEIPT_KEY), description="HMAC key signing receipts")
    receipt_key_id: str = "local"
    contact_key: SecretStr = Field(
        default=SecretStr(LOCAL_CONTACT_KEY), description="AES-256-GCM key for witness contact details, base64url"
    )
    contact_key_id: str = Field(default="local", max_length=32, description="stored beside each ciphertext")
    resumable_expiry_s: int = Field(default=24 * 3600, ge=1, description="unfinished uploads are removed after this")
    resumable_sweep_interval_s: float = Field(default=300.0, gt=0, description="how often expired resumable uploads "
                                              "and expired Idempotency-Key rows are removed")
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60,
                                   description="a photo POST's Idempotency-Key names the same submission this long")
    limits: AbuseLimits = AbuseLimits()
    node_modules: Path = Field(default=DEFAULT_NODE_MODULES, description="npm packages for the upload page")
    audit_seal_interval_s: float = Field(default=300.0, gt=0, description="how often audit entries are sealed")
    staff_login_ttl_s: int = Field(default=12 * 3600, ge=60, description="life of a token from a password login")
    staff_issued_token_ttl_days: int = Field(default=30, ge=1, description="life of an admin/CLI-issued token")
    fence_max_radius_m: float = Field(default=2_000.0, gt=0, description="larger search fences need approval")
    fence_max_window_s: float = Field(default=24 * 3600.0, gt=0, description="longer search windows need approval")
    console_tile_url: str = Field(
        default="", description="map tiles for connected deployments, `https://.../{z}/{x}/{y}.png`; empty: none"
    )
    console_tile_attribution: str = ""
    metrics_token: SecretStr | None = Field(
        default=None, description="bearer token Prometheus sends to read /metrics; unset: /metrics is open (local)"
    )

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_local(self) -> ApiSettings:
        if self.mode != "local" and self.s3.uses_default_secret():
            raise ValueError("WITNESS_S3__SECRET_KEY is still the local default; set a real secret for production")
        if self.mode != "local" and not self.database_url:
            raise ValueError("WITNESS_DATABASE_URL must be set outside local mode (e.g. a PostgreSQL URL)")
        if self.mode != "local" and self.receipt_key.get_secret_value() == LOCAL_RECEIPT_KEY:
            raise ValueError("WITNESS_RECEIPT_KEY is still the local default; set a real signing key for production")
        if self.mode != "local" and self.contact_key.get_secret_value() == LOCAL_CONTACT_KEY:
            raise ValueError("WITNESS_CONTACT_KEY is still the local default; set a real encryption key for production")
        if self.mode != "local" and self.metrics_token is None:
            # Upload and failure counters tell an outsider how an appeal is going; only the scraper reads them.
            raise ValueError("WITNESS_METRICS_TOKEN must be set outside local mode (Prometheus sends it as a bearer)")
        return self

    @field_validator("contact_key")
    @classmethod
    def _contact_key_is_32_bytes(cls, value: SecretStr) -> SecretStr:
        _decode_contact_key(value.get_secret_value())  # refuse a malformed key at start-up, not at the first witness
        return value

    @property
    def contact_key_bytes(self) -> bytes:
        return _decode_contact_key(self.contact_key.get_secret_value())

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'witness.sqlite3').resolve()}"

    @property
    def resumable_dir(self) -> Path:
        return self.state_dir / "resumable"

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ApiSettings:
        """Build from a plain mapping (tests), ignoring the process environment."""
        return cls.model_validate(dict(values))
