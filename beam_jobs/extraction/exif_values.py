"""Tolerant converters from raw EXIF values to Python values; each returns None when the value lies.

Raw values come from two parsers with different shapes: ExifRead gives lists of `Ratio`
(a Fraction that may hold 0/0), Pillow gives tuples of `IFDRational` (0/0 reads as NaN), and
either may hand over str, bytes, int or a one-element list. Nothing here raises on bad data.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

_DATETIME = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_DATE = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})$")
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_MAX_OFFSET = timedelta(hours=14)


def as_text(value: object) -> str | None:
    """A trimmed string (NULs and padding removed), or None when empty or not text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, list | tuple) and len(value) == 1:
        return as_text(value[0])
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", " ").strip()
    return text or None


def as_number(value: object) -> float | None:
    """A finite float from an int, float or rational; None for 0/0, x/0, NaN or non-numbers."""
    if isinstance(value, list | tuple) and len(value) == 1:
        return as_number(value[0])
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif hasattr(value, "numerator") and hasattr(value, "denominator"):
        numerator, denominator = value.numerator, value.denominator
        if not isinstance(numerator, int) or not isinstance(denominator, int) or denominator == 0:
            return None
        number = numerator / denominator
    else:
        return None
    return number if math.isfinite(number) else None


def as_numbers(value: object) -> list[float | None] | None:
    """Each element through `as_number`; None when the value is not a sequence of numbers."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        single = as_number(value)
        return None if single is None else [single]
    return [as_number(item) for item in value]


def as_int(value: object) -> int | None:
    """An integer tag value (Orientation, AltitudeRef), also from a one-byte bytes value."""
    if isinstance(value, bytes) and len(value) == 1:
        return value[0]
    number = as_number(value)
    return int(number) if number is not None and number.is_integer() else None


def dms_to_degrees(value: object, ref: object, *, limit: float) -> float | None:
    """Signed decimal degrees from 1 to 3 DMS parts and an N/S/E/W ref; None when unusable.

    A missing or empty ref gives None rather than guessing a hemisphere, and so do minutes or
    seconds outside [0, 60), a 0/0 part, or a result beyond `limit` (90 or 180).
    """
    parts = as_numbers(value)
    ref_text = (as_text(ref) or "").upper()
    if not parts or len(parts) > 3 or ref_text not in ("N", "S", "E", "W"):
        return None
    if any(part is None or part < 0 for part in parts):
        return None
    numbers = [p for p in parts if p is not None]
    if any(part >= 60 for part in numbers[1:]):
        return None
    degrees = sum(part / 60**index for index, part in enumerate(numbers))
    if degrees > limit:
        return None
    return -degrees if ref_text in ("S", "W") else degrees


def parse_datetime(value: object, subsec: object = None) -> datetime | None:
    """Naive datetime from 'YYYY:MM:DD HH:MM:SS' plus optional SubSecTime digits."""
    text = as_text(value)
    match = _DATETIME.match(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(group) for group in match.groups())
    try:
        parsed = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    digits = as_text(subsec)
    if digits and digits.isdecimal() and digits.isascii():  # isdigit() accepts '²', which int() refuses
        parsed = parsed.replace(microsecond=int(digits[:6].ljust(6, "0")))
    return parsed


def parse_date(value: object) -> date | None:
    """A date from 'YYYY:MM:DD' (GPSDateStamp); None for '0000:00:00', day 259 and the like."""
    text = as_text(value)
    match = _DATE.match(text) if text else None
    if match is None:
        return None
    year, month, day = (int(group) for group in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_gps_time(value: object) -> time | None:
    """UTC time of day from GPSTimeStamp [h, m, s]; None when any part is 0/0 or out of range."""
    parts = as_numbers(value)
    if parts is None or len(parts) != 3 or any(part is None for part in parts):
        return None
    hours, minutes, seconds = (p for p in parts if p is not None)
    if not (hours.is_integer() and minutes.is_integer() and 0 <= hours < 24 and 0 <= minutes < 60):
        return None
    if not 0 <= seconds < 60:
        return None
    whole = int(seconds)
    micros = min(round((seconds - whole) * 1_000_000), 999_999)
    return time(int(hours), int(minutes), whole, micros)


def parse_offset(value: object) -> timedelta | None:
    """UTC offset from '+03:00' / '-05:00' (OffsetTimeOriginal); None when blank or beyond 14 h."""
    text = as_text(value)
    match = _OFFSET.match(text) if text else None
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    if offset > _MAX_OFFSET or int(minutes) >= 60:
        return None
    return -offset if sign == "-" else offset
