"""One photo's bytes plus its upload context in, one `PhotoFacts` and a thumbnail out.

This is the whole per-photo step of the extraction job as a pure function; the Beam DoFn adds
the run fields (`thumbnail_key`, `extracted_by`, `run_id`) and sends `RejectedPhoto` to the
dead-letter output. `extract_photo` also hands back the decoded image, so the model stage runs on
the same pixels without decoding the original a second time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from PIL import Image

from beam_jobs.extraction.capture_time import resolve_capture_time
from beam_jobs.extraction.decode import UnreadableImage, decode_image
from beam_jobs.extraction.exif import read_exif
from beam_jobs.extraction.hashing import phash_hex, sha256_hex
from beam_jobs.extraction.places import place_name
from beam_jobs.extraction.thumbnails import DEFAULT_MAX_SIDE, make_thumbnail
from beam_jobs.records import PhotoFacts, PositionSource

# Fixed namespace so re-running the job over the same evidence gives the same photo ids.
PHOTO_ID_NAMESPACE = uuid.UUID("6f1d7a52-4b7e-5c3a-9d54-2b0c8e6a1f30")


class RejectedPhoto(Exception):
    """The object cannot become a photo record; `reason` is the dead-letter reason code."""

    def __init__(self, reason: str, detail: str, *, sha256: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.sha256 = sha256


def photo_id_for(*, event_id: str, submission_id: str, sha256: str) -> str:
    """Deterministic id: the same bytes in another submission are another photo record."""
    return str(uuid.uuid5(PHOTO_ID_NAMESPACE, f"{event_id}/{submission_id}/{sha256}"))


def _valid_position(lat: float, lon: float) -> bool:
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and (lat, lon) != (0.0, 0.0)


@dataclass(frozen=True, slots=True)
class ExtractedPhoto:
    facts: PhotoFacts
    thumbnail: bytes
    image: Image.Image  # upright RGB, as decoded for the facts (EXIF orientation applied)


def extract_photo(
    data: bytes,
    *,
    object_key: str,
    event_id: str,
    submission_id: str,
    uploaded_at_utc: datetime,
    device_position: tuple[float, float] | None,
    max_pixels: int,
    thumbnail_max_side: int = DEFAULT_MAX_SIDE,
) -> ExtractedPhoto:
    """Decode, read EXIF, place and date one photo; return its facts, a metadata-free thumbnail and the pixels.

    Position: EXIF GPS when usable, else `device_position` (the phone's position at upload).
    Raises `RejectedPhoto` for bytes that are not a readable photo within `max_pixels`.
    """
    sha256 = sha256_hex(data)
    try:
        decoded = decode_image(data, max_pixels=max_pixels)
    except UnreadableImage as exc:
        raise RejectedPhoto(exc.reason, exc.detail, sha256=sha256) from exc
    facts = read_exif(data)

    lat, lon, alt = facts.lat, facts.lon, facts.alt
    source: PositionSource = "exif"
    if lat is None or lon is None:
        alt = None
        if device_position is not None and _valid_position(*device_position):
            (lat, lon), source = device_position, "device"
        else:
            lat, lon, source = None, None, "none"

    capture = resolve_capture_time(facts, lat=lat, lon=lon, uploaded_at_utc=uploaded_at_utc)
    record = PhotoFacts(
        photo_id=photo_id_for(event_id=event_id, submission_id=submission_id, sha256=sha256),
        sha256=sha256,
        event_id=event_id,
        submission_id=submission_id,
        object_key=object_key,
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        lat=lat,
        lon=lon,
        alt=alt,
        position_source=source,
        place_name=place_name(lat, lon) if lat is not None and lon is not None else None,
        taken_at_utc=capture.taken_at_utc,
        taken_local=facts.local_time,
        time_source=capture.time_source,
        clock_skew_s=capture.clock_skew_s,
        time_flags=capture.flags,
        make=facts.make,
        model=facts.model,
        lens=facts.lens,
        software=facts.software,
        phash=phash_hex(decoded.image),
        exif_problems=(*facts.problems, *filter(None, [decoded.orientation_problem])),
    )
    return ExtractedPhoto(record, make_thumbnail(decoded.image, max_side=thumbnail_max_side), decoded.image)
