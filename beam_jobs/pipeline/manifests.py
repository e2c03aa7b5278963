"""Evidence manifests (one JSON per accepted upload) -> `PendingPhoto`, the job's input element.

Manifests live at `manifests/<event_id>/<submission_id>/<sha256>.json` in the evidence bucket and are
written by the ingest API (see ingest_api/services/ingest.py); `device_position` is optional.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from minio import Minio

MANIFEST_PREFIX = "manifests/"
_POSITION_SOURCES = frozenset({"device", "pin"})


class InvalidManifest(ValueError):
    """A manifest that cannot describe an upload; the message names the key and the bad value."""


@dataclass(frozen=True, slots=True)
class PendingPhoto:
    """One accepted upload to extract: where its original is and what the witness's phone said."""

    manifest_key: str
    event_id: str
    submission_id: str
    sha256: str
    object_key: str
    object_version: str | None
    received_at: datetime
    device_position: tuple[float, float] | None
    device_position_source: str | None  # "device" (phone GPS at upload) or "pin" (witness placed it)


def _text(doc: Mapping[str, object], key: str, manifest_key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidManifest(f"{manifest_key}: field {key!r} must be a non-empty string, got {value!r}")
    return value


def _position(doc: Mapping[str, object], manifest_key: str) -> tuple[tuple[float, float] | None, str | None]:
    raw = doc.get("device_position")
    if raw is None:
        return None, None
    if not isinstance(raw, Mapping):
        raise InvalidManifest(f"{manifest_key}: device_position must be an object, got {raw!r}")
    lat, lon, source = raw.get("lat"), raw.get("lon"), raw.get("source", "device")
    if not isinstance(lat, int | float) or not isinstance(lon, int | float) or source not in _POSITION_SOURCES:
        raise InvalidManifest(f"{manifest_key}: device_position {raw!r} needs numeric lat/lon and source device|pin")
    return (float(lat), float(lon)), str(source)


def parse_manifest(manifest_key: str, data: bytes) -> PendingPhoto:
    """Parse a manifest's bytes; raises `InvalidManifest` saying what is wrong."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidManifest(f"{manifest_key}: not JSON ({error})") from error
    if not isinstance(doc, dict):
        raise InvalidManifest(f"{manifest_key}: expected a JSON object, got {type(doc).__name__}")
    received_text = _text(doc, "received_at", manifest_key)
    try:
        received_at = datetime.fromisoformat(received_text)
    except ValueError as error:
        raise InvalidManifest(f"{manifest_key}: received_at {received_text!r} is not ISO 8601") from error
    version = doc.get("object_version")
    position, source = _position(doc, manifest_key)
    return PendingPhoto(
        manifest_key=manifest_key,
        event_id=_text(doc, "event_id", manifest_key),
        submission_id=_text(doc, "submission_id", manifest_key),
        sha256=_text(doc, "sha256", manifest_key),
        object_key=_text(doc, "object_key", manifest_key),
        object_version=version if isinstance(version, str) and version else None,
        received_at=received_at if received_at.tzinfo else received_at.replace(tzinfo=UTC),
        device_position=position,
        device_position_source=source,
    )


def list_manifest_keys(client: Minio, bucket: str, prefix: str = MANIFEST_PREFIX) -> Iterator[str]:
    """Every manifest key under `prefix` (recursive listing, lexicographic order)."""
    for item in client.list_objects(bucket, prefix=prefix, recursive=True):
        if item.object_name and item.object_name.endswith(".json"):
            yield item.object_name
