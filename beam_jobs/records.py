"""Catalog records written by the extraction job, and their Parquet (Arrow) schemas.

One row per photo (`PhotoRecord`), per refused object or failed model family (`DeadLetter`) and per
detection (`Detection`). Field meanings follow ARCHITECTURE.md; times are UTC microseconds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

PositionSource = Literal["exif", "device", "pin", "none"]
POSITION_SOURCES = frozenset({"exif", "device", "pin", "none"})
TIME_SOURCES = frozenset({"exif_offset", "gps", "tz_from_position", "device", "unknown"})
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UTC_US = pa.timestamp("us", tz="UTC")
_TEXT_LIST = pa.list_(pa.string())
_FLOATS = pa.list_(pa.float32())


class InvalidRecord(ValueError):
    """A record field holds a value the catalog must not store."""


PHOTO_SCHEMA = pa.schema([
    pa.field("photo_id", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("submission_id", pa.string(), nullable=False),
    pa.field("object_key", pa.string(), nullable=False),
    pa.field("format", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("lat", pa.float64()),
    pa.field("lon", pa.float64()),
    pa.field("alt", pa.float64()),
    pa.field("position_source", pa.string(), nullable=False),
    pa.field("place_name", pa.string()),
    pa.field("taken_at_utc", _UTC_US),
    pa.field("taken_local", pa.timestamp("us")),
    pa.field("time_source", pa.string(), nullable=False),
    pa.field("clock_skew_s", pa.float64()),
    pa.field("time_flags", _TEXT_LIST, nullable=False),
    pa.field("make", pa.string()),
    pa.field("model", pa.string()),
    pa.field("lens", pa.string()),
    pa.field("software", pa.string()),
    pa.field("phash", pa.string(), nullable=False),
    pa.field("exif_problems", _TEXT_LIST, nullable=False),
    pa.field("thumbnail_key", pa.string(), nullable=False),
    pa.field("extracted_by", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
])

DEAD_LETTER_SCHEMA = pa.schema([
    pa.field("object_key", pa.string(), nullable=False),
    pa.field("sha256", pa.string()),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    # The manifest the row came from (its event and submission, for erasure and `--retry-failed`); null only in
    # parts written before the column existed, whose `detail` ends with ` (manifest <key>)` instead.
    pa.field("manifest_key", pa.string()),
])

DETECTION_SCHEMA = pa.schema([
    pa.field("detection_id", pa.string(), nullable=False),
    pa.field("photo_id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("box", _FLOATS, nullable=False),
    pa.field("score", pa.float32(), nullable=False),
    pa.field("quality", pa.float32()),
    pa.field("attributes", pa.string(), nullable=False),
    pa.field("embedding", _FLOATS),
    pa.field("model_name", pa.string(), nullable=False),
    pa.field("model_version", pa.string(), nullable=False),
    pa.field("crop_key", pa.string()),
])


@dataclasses.dataclass(frozen=True, slots=True)
class PhotoFacts:
    """Everything extraction learns from one photo's bytes and its upload context."""

    photo_id: str
    sha256: str
    event_id: str
    submission_id: str
    object_key: str
    format: str
    width: int
    height: int
    lat: float | None
    lon: float | None
    alt: float | None
    position_source: PositionSource
    place_name: str | None
    taken_at_utc: datetime | None
    taken_local: datetime | None
    time_source: str
    clock_skew_s: float | None
    time_flags: tuple[str, ...]
    make: str | None
    model: str | None
    lens: str | None
    software: str | None
    phash: str
    exif_problems: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _SHA256.match(self.sha256):
            raise InvalidRecord(f"sha256 must be 64 lower-case hex characters, got {self.sha256!r}")
        if self.width <= 0 or self.height <= 0:
            raise InvalidRecord(f"width/height must be positive, got {self.width}x{self.height}")
        if self.position_source not in POSITION_SOURCES:
            raise InvalidRecord(f"position_source {self.position_source!r} not in {sorted(POSITION_SOURCES)}")
        if self.time_source not in TIME_SOURCES:
            raise InvalidRecord(f"time_source {self.time_source!r} not in {sorted(TIME_SOURCES)}")
        if (self.lat is None) != (self.lon is None) or (self.lat is None) != (self.position_source == "none"):
            raise InvalidRecord(
                f"lat/lon {self.lat},{self.lon} disagree with source {self.position_source!r}"
            )
        if self.taken_at_utc is not None and self.taken_at_utc.utcoffset() is None:
            raise InvalidRecord(f"taken_at_utc must be timezone-aware, got {self.taken_at_utc.isoformat()}")
        if self.taken_local is not None and self.taken_local.tzinfo is not None:
            raise InvalidRecord(f"taken_local must be naive wall-clock time, got {self.taken_local}")


@dataclasses.dataclass(frozen=True, slots=True)
class PhotoRecord:
    """A photo row as stored: the extracted facts plus where and by which run they were written."""

    facts: PhotoFacts
    thumbnail_key: str
    extracted_by: str
    run_id: str

    def to_row(self) -> dict[str, object]:
        row = {field.name: getattr(self.facts, field.name) for field in dataclasses.fields(PhotoFacts)}
        row["time_flags"] = list(self.facts.time_flags)
        row["exif_problems"] = list(self.facts.exif_problems)
        return {**row, "thumbnail_key": self.thumbnail_key, "extracted_by": self.extracted_by,
                "run_id": self.run_id}


MODEL_FAILED = "model_failed"
"""The one dead-letter reason that is not a refusal: the photo HAS its photo row and thumbnail, but one model
family raised on it, so that family's detections are missing (the detail names family, version and error)."""


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """An object the job could not turn into a photo record, and why (`reason` is a short code); or, with reason
    `MODEL_FAILED`, a photo record missing one model family's detections.
    """

    object_key: str
    sha256: str | None
    reason: str
    detail: str
    run_id: str
    manifest_key: str  # the input it came from (every input of the job is a manifest)

    def to_row(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """One detected face/vehicle/person/plate; `box` is (x, y, w, h) in upright-image pixels.

    `embedding` is `(d,) float32`, L2-normalised, or None for kinds without one (plates).
    """

    detection_id: str
    photo_id: str
    kind: str
    box: tuple[float, float, float, float]
    score: float
    quality: float | None
    attributes: Mapping[str, object]
    embedding: NDArray[np.float32] | None
    model_name: str
    model_version: str
    crop_key: str | None

    def __post_init__(self) -> None:
        if not self.kind:
            raise InvalidRecord("detection kind must not be empty")
        if len(self.box) != 4 or self.box[2] <= 0 or self.box[3] <= 0:
            raise InvalidRecord(f"box must be (x, y, w, h) with positive w and h, got {self.box!r}")
        if self.embedding is not None:
            if self.embedding.ndim != 1 or self.embedding.dtype != np.float32:
                raise InvalidRecord(
                    f"embedding must be (d,) float32, got {self.embedding.shape} {self.embedding.dtype}"
                )
            norm = float(np.linalg.norm(self.embedding))
            if not math.isclose(norm, 1.0, abs_tol=1e-3):
                raise InvalidRecord(f"embedding must be L2-normalised, norm is {norm:.4f}")

    def to_row(self) -> dict[str, object]:
        return {
            "detection_id": self.detection_id, "photo_id": self.photo_id, "kind": self.kind,
            "box": [float(v) for v in self.box], "score": self.score, "quality": self.quality,
            "attributes": json.dumps(self.attributes, sort_keys=True, ensure_ascii=False),
            "embedding": None if self.embedding is None else self.embedding.tolist(),
            "model_name": self.model_name, "model_version": self.model_version, "crop_key": self.crop_key,
        }


def photos_table(records: Sequence[PhotoRecord]) -> pa.Table:
    """Photo records as an Arrow table with `PHOTO_SCHEMA` (an empty list gives an empty table)."""
    return pa.Table.from_pylist([record.to_row() for record in records], schema=PHOTO_SCHEMA)


def dead_letters_table(records: Sequence[DeadLetter]) -> pa.Table:
    """Dead letters as an Arrow table with `DEAD_LETTER_SCHEMA`."""
    return pa.Table.from_pylist([record.to_row() for record in records], schema=DEAD_LETTER_SCHEMA)


def detections_table(records: Sequence[Detection]) -> pa.Table:
    """Detections as an Arrow table with `DETECTION_SCHEMA`."""
    return pa.Table.from_pylist([record.to_row() for record in records], schema=DETECTION_SCHEMA)
