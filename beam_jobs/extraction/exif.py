"""EXIF facts of one photo (position, camera-local time, GPS time, camera) that survive lying EXIF.

ExifRead is the primary parser; Pillow's `getexif()` fills any tag ExifRead could not reach
(HEIC/WebP/PNG containers, IFDs ExifRead gives up on). Unusable values become None and the
reason is kept in `ExifFacts.problems`: corrupt EXIF must never cost us the photo.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from typing import Literal

import exifread
from exifread.core.exceptions import ExifError
from PIL import Image

from beam_jobs.extraction.decode import ALLOWED_FORMATS, enable_heif
from beam_jobs.extraction.exif_values import (
    as_int,
    as_number,
    as_text,
    dms_to_degrees,
    parse_date,
    parse_datetime,
    parse_gps_time,
    parse_offset,
)

GpsStatus = Literal["ok", "absent", "invalid"]

# Both parsers are fed hostile bytes; these are what their header walkers raise on them.
# Third-party parsers walking hostile bytes: exifread's HEIC walker raises its own ExifError subclasses (BadSize),
# and even AssertionError / NotImplementedError on broken boxes (found by fuzzing). None may kill the photo.
_PARSER_ERRORS = (
    ValueError, TypeError, KeyError, IndexError, AttributeError, OSError, EOFError,
    SyntaxError, struct.error, ZeroDivisionError, RecursionError, Image.DecompressionBombError,
    ExifError, AssertionError, NotImplementedError,
)
_EXIFREAD_NAMES = {
    "Image Make": "Make", "Image Model": "Model", "Image Software": "Software",
    "Image Orientation": "Orientation", "Image DateTime": "DateTime",
    "EXIF DateTimeOriginal": "DateTimeOriginal", "EXIF DateTimeDigitized": "DateTimeDigitized",
    "EXIF SubSecTime": "SubSecTime", "EXIF SubSecTimeOriginal": "SubSecTimeOriginal",
    "EXIF SubSecTimeDigitized": "SubSecTimeDigitized", "EXIF OffsetTime": "OffsetTime",
    "EXIF OffsetTimeOriginal": "OffsetTimeOriginal", "EXIF OffsetTimeDigitized": "OffsetTimeDigitized",
    "EXIF LensModel": "LensModel",
    "GPS GPSLatitudeRef": "GPSLatitudeRef", "GPS GPSLatitude": "GPSLatitude",
    "GPS GPSLongitudeRef": "GPSLongitudeRef", "GPS GPSLongitude": "GPSLongitude",
    "GPS GPSAltitudeRef": "GPSAltitudeRef", "GPS GPSAltitude": "GPSAltitude",
    "GPS GPSTimeStamp": "GPSTimeStamp", "GPS GPSDate": "GPSDateStamp",
}
_IFD0, _EXIF_IFD, _GPS_IFD = 0, 0x8769, 0x8825
_PILLOW_TAGS: dict[int, dict[int, str]] = {
    _IFD0: {0x010F: "Make", 0x0110: "Model", 0x0131: "Software", 0x0112: "Orientation", 0x0132: "DateTime"},
    _EXIF_IFD: {
        0x9003: "DateTimeOriginal", 0x9004: "DateTimeDigitized", 0x9290: "SubSecTime",
        0x9291: "SubSecTimeOriginal", 0x9292: "SubSecTimeDigitized", 0x9010: "OffsetTime",
        0x9011: "OffsetTimeOriginal", 0x9012: "OffsetTimeDigitized", 0xA434: "LensModel",
    },
    _GPS_IFD: {
        1: "GPSLatitudeRef", 2: "GPSLatitude", 3: "GPSLongitudeRef", 4: "GPSLongitude",
        5: "GPSAltitudeRef", 6: "GPSAltitude", 7: "GPSTimeStamp", 0x1D: "GPSDateStamp",
    },
}
# Camera-local time tags in order of preference, each with its own sub-second and offset tag.
_TIME_TAGS = (
    ("DateTimeOriginal", "SubSecTimeOriginal", "OffsetTimeOriginal"),
    ("DateTimeDigitized", "SubSecTimeDigitized", "OffsetTimeDigitized"),
    ("DateTime", "SubSecTime", "OffsetTime"),
)


@dataclass(frozen=True, slots=True)
class ExifFacts:
    """What the EXIF says, cleaned: every field is None when absent or unusable.

    `local_time` is camera-local wall-clock time (naive); `utc_offset` is the offset recorded
    for that same tag; `gps_date` / `gps_time` are the GPS fix's UTC date and time of day.
    """

    lat: float | None = None
    lon: float | None = None
    alt: float | None = None
    gps_status: GpsStatus = "absent"
    local_time: datetime | None = None
    local_time_tag: str | None = None
    utc_offset: timedelta | None = None
    gps_date: date | None = None
    gps_time: time | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    software: str | None = None
    orientation: int | None = None
    problems: tuple[str, ...] = ()

    @property
    def gps_datetime_utc(self) -> datetime | None:
        """The GPS fix time as an aware UTC datetime, when both date and time are valid."""
        if self.gps_date is None or self.gps_time is None:
            return None
        return datetime.combine(self.gps_date, self.gps_time, tzinfo=UTC)


def read_exif(data: bytes) -> ExifFacts:
    """Parse the EXIF of an image file's bytes; never raises on malformed metadata."""
    problems: list[str] = []
    primary = _read_with_exifread(data, problems)
    fallback = _read_with_pillow(data, problems)
    return facts_from_tags({**fallback, **primary}, problems=problems)


def _read_with_exifread(data: bytes, problems: list[str]) -> dict[str, object]:
    # ExifRead logs (not raises) what it skips; its logger stays the caller's to configure.
    try:
        tags = exifread.process_file(BytesIO(data), details=False, extract_thumbnail=False)
    except _PARSER_ERRORS as exc:
        problems.append(f"exifread failed: {type(exc).__name__}: {exc}")
        return {}
    return {name: tags[key].values for key, name in _EXIFREAD_NAMES.items() if key in tags}


def _read_with_pillow(data: bytes, problems: list[str]) -> dict[str, object]:
    enable_heif()
    found: dict[str, object] = {}
    try:
        with Image.open(BytesIO(data), formats=ALLOWED_FORMATS) as image:
            exif = image.getexif()
            for ifd, names in _PILLOW_TAGS.items():
                values = exif if ifd == _IFD0 else exif.get_ifd(ifd)
                found.update({name: values[tag] for tag, name in names.items() if tag in values})
    except _PARSER_ERRORS as exc:
        problems.append(f"pillow exif failed: {type(exc).__name__}: {exc}")
    return found


def facts_from_tags(tags: Mapping[str, object], *, problems: list[str] | None = None) -> ExifFacts:
    """Build `ExifFacts` from raw tag values keyed by EXIF tag name (e.g. 'GPSLatitude')."""
    notes = list(problems or [])
    lat, lon, alt, status = _position(tags, notes)
    local_time, local_tag, offset = _local_time(tags, notes)
    gps_date = parse_date(tags.get("GPSDateStamp"))
    gps_time = parse_gps_time(tags.get("GPSTimeStamp"))
    if "GPSDateStamp" in tags and gps_date is None:
        notes.append(f"GPSDateStamp unusable: {tags['GPSDateStamp']!r}")
    if "GPSTimeStamp" in tags and gps_time is None:
        notes.append(f"GPSTimeStamp unusable: {tags['GPSTimeStamp']!r}")
    return ExifFacts(
        lat=lat, lon=lon, alt=alt, gps_status=status,
        local_time=local_time, local_time_tag=local_tag, utc_offset=offset,
        gps_date=gps_date, gps_time=gps_time,
        make=as_text(tags.get("Make")), model=as_text(tags.get("Model")),
        lens=as_text(tags.get("LensModel")), software=as_text(tags.get("Software")),
        orientation=as_int(tags.get("Orientation")),
        problems=tuple(notes),
    )


def _position(
    tags: Mapping[str, object], notes: list[str]
) -> tuple[float | None, float | None, float | None, GpsStatus]:
    if "GPSLatitude" not in tags and "GPSLongitude" not in tags:
        return None, None, None, "absent"
    lat = dms_to_degrees(tags.get("GPSLatitude"), tags.get("GPSLatitudeRef"), limit=90.0)
    lon = dms_to_degrees(tags.get("GPSLongitude"), tags.get("GPSLongitudeRef"), limit=180.0)
    if lat is None or lon is None:
        raw = {k: tags.get(k) for k in ("GPSLatitude", "GPSLatitudeRef", "GPSLongitude", "GPSLongitudeRef")}
        notes.append(f"GPS position unusable: {raw!r}")
        return None, None, None, "invalid"
    if lat == 0.0 and lon == 0.0:
        # Phones without a fix write zeros; 0,0 is open sea (Null Island), never a witness.
        notes.append("GPS position is exactly 0,0 (no fix written as zeros)")
        return None, None, None, "invalid"
    alt = as_number(tags.get("GPSAltitude"))
    if alt is not None and as_int(tags.get("GPSAltitudeRef")) == 1:
        alt = -alt
    return lat, lon, alt, "ok"


def _local_time(
    tags: Mapping[str, object], notes: list[str]
) -> tuple[datetime | None, str | None, timedelta | None]:
    for time_tag, subsec_tag, offset_tag in _TIME_TAGS:
        if time_tag not in tags:
            continue
        parsed = parse_datetime(tags[time_tag], tags.get(subsec_tag))
        if parsed is None:
            notes.append(f"{time_tag} unusable: {tags[time_tag]!r}")
            continue
        offset = parse_offset(tags.get(offset_tag))
        if offset_tag in tags and offset is None:
            notes.append(f"{offset_tag} unusable: {tags[offset_tag]!r}")
        return parsed, time_tag, offset
    return None, None, None
