"""MetadataTable: join, stable ids, trust flags, Arrow roundtrip."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from indexers import metadata
from indexers.metadata import UNKNOWN_TIME, MetadataError, MetadataTable, detection_int_id

RecordFactory = Callable[..., tuple[pa.Table, pa.Table]]


def test_ids_are_stable_positive_and_derived_from_sha256() -> None:
    assert detection_int_id("d0001") == detection_int_id("d0001")
    assert detection_int_id("d0001") != detection_int_id("d0002")
    assert 0 <= detection_int_id("x") < 2**63
    # Known value: guards against an accidental change of derivation, which would orphan every index.
    assert detection_int_id("d0000") == int.from_bytes(
        hashlib.sha256(b"d0000").digest()[:8], "big") & (2**63 - 1)


def test_join_and_trust_flags(records: RecordFactory, t0: datetime) -> None:
    det, photos = records(
        [51.5, None, 51.6, 51.7], [-0.1, None, -0.2, -0.3],
        taken=[t0, t0 + timedelta(seconds=1, microseconds=999_999), None, t0],
        position_source=["exif", "none", "pin", "ip_guess"],
        time_source=["exif_offset", "gps", "device", "unknown"],
    )
    meta = MetadataTable.from_records(det, photos)
    assert meta.ids.dtype == np.int64 and len(meta) == 4
    assert meta.position_trusted.tolist() == [True, False, True, False]
    assert np.isnan(meta.lat[1])
    assert meta.time_known.tolist() == [True, True, False, True]
    assert meta.time_trusted.tolist() == [True, True, False, False]
    s0 = int(t0.timestamp())
    assert meta.taken_at.tolist() == [s0, s0 + 1, UNKNOWN_TIME, s0]  # floored to whole seconds
    assert meta.box.shape == (4, 4) and meta.box.dtype == np.float32


def test_detections_follow_their_photo_in_any_order(records: RecordFactory) -> None:
    det, photos = records([10.0, 20.0, 30.0], [1.0, 2.0, 3.0])
    meta = MetadataTable.from_records(det, photos.take(pa.array([2, 0, 1])))
    assert meta.lat.tolist() == [10.0, 20.0, 30.0]
    assert meta.photo_id.tolist() == ["p0000", "p0001", "p0002"]


def test_orphan_detection_and_duplicates_are_refused(records: RecordFactory) -> None:
    det, photos = records([10.0, 20.0], [1.0, 2.0])
    with pytest.raises(MetadataError, match="unknown photo_id 'p0001'"):
        MetadataTable.from_records(det, photos.slice(0, 1))
    with pytest.raises(MetadataError, match="duplicate detection_id"):
        MetadataTable.from_records(pa.concat_tables([det, det]), photos)


def test_hash_collision_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "detection_int_id", lambda name: 42)
    with pytest.raises(MetadataError, match="collision"):
        metadata.detection_int_ids(["a", "b"])


def test_arrow_roundtrip_and_row_lookup(records: RecordFactory, t0: datetime) -> None:
    det, photos = records([10.0, None], [1.0, None], taken=[t0, None], time_source=["gps", "unknown"])
    meta = MetadataTable.from_records(det, photos)
    back = MetadataTable.from_arrow(meta.to_arrow())
    for field in dataclasses.fields(meta):
        np.testing.assert_array_equal(getattr(back, field.name), getattr(meta, field.name), err_msg=field.name)
    rows = meta.rows_of(np.array([[meta.ids[1], -1, 7]]))
    assert rows.tolist() == [[1, -1, -1]]
    assert meta.take(np.array([1])).column("detection_id").to_pylist() == ["d0001"]
