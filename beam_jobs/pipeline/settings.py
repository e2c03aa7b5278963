"""The extraction job's one settings object (env prefix `WITNESS_`, nested keys with `__`).

    WITNESS_S3__ENDPOINT=minio:9000 WITNESS_S3__SECRET_KEY=... WITNESS_EXTRACT_MODELS='["faces"]' \
        python -m beam_jobs.extract --runner=DirectRunner

Read once by the launcher; the DoFns receive plain values from it. Runner flags are not settings: they go
to Beam's `PipelineOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from beam_jobs.models.install import default_models_dir
from infra.storage.config import S3Settings

JOB_NAME = "witness-extract"
JOB_VERSION = "1"
METRICS_NAMESPACE = "extract"  # the namespace of every Beam counter and distribution the job reports


class ExtractSettings(BaseSettings):
    # extra="ignore": the API's WITNESS_* variables (mode, port, database...) share the prefix.
    model_config = SettingsConfigDict(env_prefix="WITNESS_", env_nested_delimiter="__", extra="ignore")

    s3: S3Settings = S3Settings()
    max_pixels: int = Field(default=250_000_000, ge=1, description="refuse decompression bombs above this")
    thumbnail_max_side: int = Field(default=512, ge=16)
    crop_max_side: int = Field(default=512, ge=16)
    num_shards: int = Field(default=4, ge=1, le=99_999, description="Parquet parts per table and run (at most)")
    extract_models: list[str] | None = Field(
        default=None, description="model families to run; None = every installed family, [] = none"
    )
    model_threads: int | None = Field(
        default=None, ge=1, description="OpenCV threads per worker process for the models; None = OpenCV's "
        "default (every core). 1 where the runner starts one worker process per core (Dask, multi_processing)")
    models_dir: Path = Field(default_factory=default_models_dir, description="where the YOLOX ONNX lives")
    extract_lease_ttl_s: float = Field(
        default=120.0, ge=5.0, description="how long a launch's lease outlives its last renewal (renewed every "
        "quarter of it); a crashed launch blocks the next one at most this long")

    @property
    def extracted_by(self) -> str:
        return f"{JOB_NAME}/{JOB_VERSION}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ExtractSettings:
        """Build from a plain mapping (tests), ignoring the process environment."""
        return cls.model_validate(dict(values))
