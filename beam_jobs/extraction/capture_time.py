"""When was the photo taken, in UTC, and how do we know: provenance and clock-sanity flags.

Order of trust: the camera's local time with its recorded UTC offset (`exif_offset`), then the
GPS fix time (`gps`), then the camera's local time read in the time zone of the photo's
position (`tz_from_position`), else `unknown`. Camera clocks are often wrong; the skew against
GPS and the flags let an investigator see which times to doubt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from timezonefinder import TimezoneFinder

from beam_jobs.extraction.exif import ExifFacts

# "device" is written by ingest when a phone reports its own clock; EXIF never yields it.
TimeSource = Literal["exif_offset", "gps", "tz_from_position", "device", "unknown"]

CLOCK_DISAGREES = "clock_disagrees_with_gps"
AFTER_UPLOAD = "after_upload"
IMPLAUSIBLY_OLD = "implausibly_old"
GPS_DATE_INFERRED = "gps_date_inferred"
GPS_IGNORED = "gps_time_ignored_position_invalid"
FROM_FILE_DATETIME = "local_time_from_file_datetime"

# Cameras that lost their clock restart at 1970, 1980 or 2000-01-01; a later floor catches them.
DEFAULT_OLDEST_PLAUSIBLE = datetime(2000, 1, 2, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CaptureTime:
    """`clock_skew_s` is camera-local time read in its zone minus GPS UTC (positive: camera ahead)."""

    taken_at_utc: datetime | None
    time_source: TimeSource
    clock_skew_s: float | None
    flags: tuple[str, ...] = ()


@functools.cache
def _timezone_finder() -> TimezoneFinder:
    # Loading the polygons takes a moment and memory: once per worker, on first use.
    return TimezoneFinder()


def zone_at(lat: float, lon: float) -> tzinfo | None:
    """The IANA time zone at a position (ocean zones included), or None if unknown."""
    name = _timezone_finder().timezone_at(lng=lon, lat=lat)
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return None


def resolve_capture_time(
    facts: ExifFacts,
    *,
    lat: float | None,
    lon: float | None,
    uploaded_at_utc: datetime,
    max_skew_s: float = 300.0,
    oldest_plausible: datetime = DEFAULT_OLDEST_PLAUSIBLE,
) -> CaptureTime:
    """Pick the best UTC capture time for a photo and say where it came from.

    `lat`/`lon` is the photo's resolved position (EXIF, else device), used only to find the
    time zone. `uploaded_at_utc` must be timezone-aware.
    """
    if uploaded_at_utc.tzinfo is None:
        raise ValueError(f"uploaded_at_utc must be timezone-aware, got naive {uploaded_at_utc.isoformat()}")
    flags: list[str] = []
    if facts.local_time is not None and facts.local_time_tag == "DateTime":
        flags.append(FROM_FILE_DATETIME)
    zone = zone_at(lat, lon) if lat is not None and lon is not None else None
    local_as_utc = _local_as_utc(facts, zone)
    gps_utc = _gps_utc(facts, flags)

    taken: datetime | None
    source: TimeSource
    if facts.local_time is not None and facts.utc_offset is not None:
        taken, source = local_as_utc, "exif_offset"
    elif gps_utc is not None:
        taken, source = gps_utc, "gps"
    elif local_as_utc is not None:
        taken, source = local_as_utc, "tz_from_position"
    else:
        taken, source = None, "unknown"

    skew = None
    if local_as_utc is not None and gps_utc is not None:
        skew = (local_as_utc - gps_utc).total_seconds()
        if abs(skew) > max_skew_s:
            flags.append(CLOCK_DISAGREES)
    if taken is not None and taken > uploaded_at_utc:
        flags.append(AFTER_UPLOAD)
    if taken is not None and taken < oldest_plausible:
        flags.append(IMPLAUSIBLY_OLD)
    return CaptureTime(taken_at_utc=taken, time_source=source, clock_skew_s=skew, flags=tuple(flags))


def _local_as_utc(facts: ExifFacts, zone: tzinfo | None) -> datetime | None:
    if facts.local_time is None:
        return None
    if facts.utc_offset is not None:
        return (facts.local_time - facts.utc_offset).replace(tzinfo=UTC)
    if zone is None:
        return None
    return facts.local_time.replace(tzinfo=zone).astimezone(UTC)


def _gps_utc(facts: ExifFacts, flags: list[str]) -> datetime | None:
    if facts.gps_time is None:
        return None
    if facts.gps_status == "invalid":
        # A receiver that wrote a 0,0 or 0/0 position had no fix; its clock is no better.
        flags.append(GPS_IGNORED)
        return None
    if facts.gps_date is not None:
        return datetime.combine(facts.gps_date, facts.gps_time, tzinfo=UTC)
    if facts.local_time is None:
        return None
    # Time of day without a date: take the day that puts the fix nearest the camera's local
    # time. Right for offsets within +-12 h; the flag tells readers the date was inferred.
    candidates = [
        datetime.combine(facts.local_time.date() + timedelta(days=shift), facts.gps_time, tzinfo=UTC)
        for shift in (-1, 0, 1)
    ]
    local_naive_utc = facts.local_time.replace(tzinfo=UTC)
    flags.append(GPS_DATE_INFERRED)
    return min(candidates, key=lambda candidate: abs(candidate - local_naive_utc))
