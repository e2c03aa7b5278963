"""Catalog records: Parquet roundtrips keep every field and type; invalid records are refused."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_jobs.records import (
    DEAD_LETTER_SCHEMA,
    DETECTION_SCHEMA,
    PHOTO_SCHEMA,
    DeadLetter,
    Detection,
    InvalidRecord,
    PhotoFacts,
    PhotoRecord,
    dead_letters_table,
    detections_table,
    photos_table,
)

SHA = "ab" * 32
FACTS = PhotoFacts(
    photo_id="p-1", sha256=SHA, event_id="ev1", submission_id="sub1", object_key="evidence/ev1/ab.jpg",
    format="JPEG", width=640, height=480, lat=-12.94025, lon=-38.414853, alt=3.5, position_source="exif",
    place_name="Lauro de Freitas, Bahia, BR",
    taken_at_utc=datetime(2016, 10, 6, 18, 34, 58, 123_456, tzinfo=UTC),
    taken_local=datetime(2016, 10, 6, 15, 34, 58, 123_456), time_source="tz_from_position", clock_skew_s=None,
    time_flags=("gps_date_inferred",), make="Apple", model="iPhone 5", lens=None, software="9.3.5",
    phash="f0968e15a9e1a766", exif_problems=("GPSDateStamp unusable: '2014:09:259'",),
)
BARE = dataclasses.replace(FACTS, photo_id="p-2", lat=None, lon=None, alt=None, position_source="none",
                           place_name=None, taken_at_utc=None, taken_local=None, time_source="unknown",
                           time_flags=(), make=None, model=None, software=None, exif_problems=())


def _roundtrip(table: pa.Table, path: Path) -> pa.Table:
    pq.write_table(table, path)
    return pq.read_table(path)


def test_photo_records_roundtrip_through_parquet(tmp_path: Path) -> None:
    records = [PhotoRecord(facts=facts, thumbnail_key=f"derived/thumbs/{facts.photo_id}.jpg",
                           extracted_by="witness-extract 0.1.0", run_id="run-7") for facts in (FACTS, BARE)]
    table = photos_table(records)
    assert table.schema == PHOTO_SCHEMA
    back = _roundtrip(table, tmp_path / "photos.parquet")
    assert back.schema == PHOTO_SCHEMA
    rows = back.to_pylist()
    assert rows == [record.to_row() for record in records]
    assert rows[0]["taken_at_utc"] == FACTS.taken_at_utc
    assert rows[0]["taken_at_utc"].tzinfo is not None
    assert rows[0]["time_flags"] == ["gps_date_inferred"]
    assert rows[1]["lat"] is None and rows[1]["time_flags"] == []


def test_photo_schema_has_the_architecture_fields() -> None:
    required = {
        "photo_id", "sha256", "event_id", "submission_id", "object_key", "width", "height", "lat", "lon",
        "alt", "position_source", "taken_at_utc", "time_source", "clock_skew_s", "make", "model", "phash",
        "thumbnail_key", "extracted_by", "run_id", "place_name", "lens", "software", "format",
    }
    assert required <= set(PHOTO_SCHEMA.names)
    assert PHOTO_SCHEMA.field("taken_at_utc").type == pa.timestamp("us", tz="UTC")


def test_dead_letters_roundtrip(tmp_path: Path) -> None:
    letters = [DeadLetter(object_key="evidence/ev1/x.bin", sha256=SHA, reason="unsupported_format",
                          detail="not a JPEG, PNG, WebP or HEIC image", run_id="run-7",
                          manifest_key="manifests/ev1/s1/x.json"),
               DeadLetter(object_key="evidence/ev1/y.jpg", sha256=None, reason="unreachable", detail="gone",
                          run_id="run-7", manifest_key="manifests/ev1/s1/y.json")]
    back = _roundtrip(dead_letters_table(letters), tmp_path / "dead.parquet")
    assert back.schema == DEAD_LETTER_SCHEMA
    assert back.to_pylist() == [letter.to_row() for letter in letters]


def _detection(**changes: object) -> Detection:
    embedding = np.arange(1, 9, dtype=np.float32)
    base = Detection(detection_id="d-1", photo_id="p-1", kind="face", box=(10.0, 20.0, 64.0, 80.0),
                     score=0.93,
                     quality=0.71, attributes={"colour": "red", "plate_raw": "AZJ 6991", "conf": 0.8},
                     embedding=embedding / np.linalg.norm(embedding), model_name="sface",
                     model_version="2021dec", crop_key="derived/crops/d-1.jpg")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_detections_roundtrip(tmp_path: Path) -> None:
    detections = [_detection(), _detection(detection_id="d-2", kind="plate", embedding=None, quality=None,
                                           crop_key=None)]
    back = _roundtrip(detections_table(detections), tmp_path / "detections.parquet")
    assert back.schema == DETECTION_SCHEMA
    rows = back.to_pylist()
    assert rows[0]["attributes"] == '{"colour": "red", "conf": 0.8, "plate_raw": "AZJ 6991"}'
    assert rows[0]["box"] == [10.0, 20.0, 64.0, 80.0]
    assert np.allclose(rows[0]["embedding"], detections[0].embedding)  # type: ignore[arg-type]
    assert rows[1]["embedding"] is None and rows[1]["quality"] is None


def test_empty_lists_give_empty_tables_with_schema() -> None:
    assert photos_table([]).schema == PHOTO_SCHEMA and photos_table([]).num_rows == 0
    assert detections_table([]).schema == DETECTION_SCHEMA


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"sha256": "ABC"}, "sha256"), ({"width": 0}, "width"),
     ({"position_source": "guess"}, "position_source"),
     ({"time_source": "sundial"}, "time_source"), ({"lat": None}, "disagree"),
     ({"position_source": "none"}, "disagree"), ({"taken_at_utc": datetime(2020, 1, 1)}, "timezone-aware"),
     ({"taken_local": datetime(2020, 1, 1, tzinfo=UTC)}, "naive")],
)
def test_invalid_photo_facts_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        dataclasses.replace(FACTS, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"embedding": np.ones(8, dtype=np.float32)}, "L2-normalised"),
     ({"embedding": np.ones(8, dtype=np.float64) / np.sqrt(8)}, "float32"),
     ({"box": (0.0, 0.0, -5.0, 10.0)}, "box"), ({"kind": ""}, "kind")],
)
def test_invalid_detections_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        _detection(**changes)
