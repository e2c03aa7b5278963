"""The API deployable's one settings object (env prefix `WITNESS_`, nested keys with `__`).

    WITNESS_MODE=production WITNESS_S3__ENDPOINT=minio:9000 WITNESS_S3__SECRET_KEY=... \
    WITNESS_DATABASE_URL=postgresql+psycopg://... witness serve
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.storage.config import S3Settings

DEFAULT_STATE_DIR = Path(".witness")


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

    @model_validator(mode="after")
    def _refuse_default_secrets_outside_local(self) -> ApiSettings:
        if self.mode != "local" and self.s3.uses_default_secret():
            raise ValueError("WITNESS_S3__SECRET_KEY is still the local default; set a real secret for production")
        if self.mode != "local" and not self.database_url:
            raise ValueError("WITNESS_DATABASE_URL must be set outside local mode (e.g. a PostgreSQL URL)")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.state_dir / 'witness.sqlite3').resolve()}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ApiSettings:
        """Build from a plain mapping (tests), ignoring the process environment."""
        return cls.model_validate(dict(values))
