"""Manifest parsing: the fields the ingest API writes, the optional device position, bad documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from beam_jobs.pipeline.manifests import InvalidManifest, parse_manifest

KEY = "manifests/ev/sub/" + "a" * 64 + ".json"
GOOD = {
    "event_id": "ev", "submission_id": "sub", "sha256": "a" * 64, "size": 10, "media_type": "image/jpeg",
    "width": 2, "height": 2, "object_key": "originals/aa/aa/" + "a" * 64, "object_version": "v1",
    "received_at": "2024-06-01T12:00:00+00:00", "api_version": "1",
}


def test_parses_the_api_manifest() -> None:
    pending = parse_manifest(KEY, json.dumps(GOOD).encode())
    assert (pending.event_id, pending.submission_id, pending.object_version) == ("ev", "sub", "v1")
    assert pending.received_at == datetime(2024, 6, 1, 12, tzinfo=UTC)
    assert pending.device_position is None and pending.device_position_source is None


def test_device_position_with_its_source() -> None:
    doc = {**GOOD, "device_position": {"lat": 48.86, "lon": 2.36, "source": "pin"}}
    pending = parse_manifest(KEY, json.dumps(doc).encode())
    assert (pending.device_position, pending.device_position_source) == ((48.86, 2.36), "pin")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({**GOOD, "sha256": ""}).encode(), "'sha256'"),
        (json.dumps({**GOOD, "received_at": "yesterday"}).encode(), "ISO 8601"),
        (json.dumps({**GOOD, "device_position": {"lat": "x", "lon": 1}}).encode(), "device_position"),
    ],
)
def test_bad_manifests_say_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidManifest, match=message) as error:
        parse_manifest(KEY, data)
    assert KEY in str(error.value)
