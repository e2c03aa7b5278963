"""resolve_capture_time: provenance order, clock skew against GPS, and sanity flags."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from beam_jobs.extraction.capture_time import (
    AFTER_UPLOAD,
    CLOCK_DISAGREES,
    GPS_DATE_INFERRED,
    GPS_IGNORED,
    IMPLAUSIBLY_OLD,
    resolve_capture_time,
)
from beam_jobs.extraction.exif import ExifFacts, read_exif

UPLOADED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
AREZZO = (43.4674, 11.8851)  # Europe/Rome: +02:00 in summer, +01:00 in winter
SEATTLE = (47.6272, -122.3373)


def test_exif_offset_wins_over_gps() -> None:
    facts = ExifFacts(local_time=datetime(2022, 8, 14, 14, 12, 31), utc_offset=timedelta(hours=3),
                      gps_date=date(2022, 8, 14), gps_time=time(11, 12, 32), gps_status="ok")
    result = resolve_capture_time(facts, lat=60.15, lon=24.91, uploaded_at_utc=UPLOADED)
    assert result.taken_at_utc == datetime(2022, 8, 14, 11, 12, 31, tzinfo=UTC)
    assert result.time_source == "exif_offset"
    assert result.clock_skew_s == -1.0
    assert result.flags == ()


def test_gps_wins_over_time_zone_and_skew_uses_the_zone() -> None:
    facts = ExifFacts(local_time=datetime(2023, 7, 1, 16, 0, 30), gps_date=date(2023, 7, 1),
                      gps_time=time(14, 0, 0), gps_status="ok")
    result = resolve_capture_time(facts, lat=AREZZO[0], lon=AREZZO[1], uploaded_at_utc=UPLOADED)
    assert result.taken_at_utc == datetime(2023, 7, 1, 14, 0, tzinfo=UTC)
    assert result.time_source == "gps"
    assert result.clock_skew_s == 30.0


@pytest.mark.parametrize(
    ("local", "expected_utc"),
    [(datetime(2023, 7, 1, 16, 0), datetime(2023, 7, 1, 14, 0)),
     (datetime(2023, 1, 15, 16, 0), datetime(2023, 1, 15, 15, 0))],
    ids=["summer-time", "winter-time"],
)
def test_time_zone_of_the_position_reads_camera_local_time(local: datetime, expected_utc: datetime) -> None:
    result = resolve_capture_time(ExifFacts(local_time=local), lat=AREZZO[0], lon=AREZZO[1],
                                  uploaded_at_utc=UPLOADED)
    assert result.taken_at_utc == expected_utc.replace(tzinfo=UTC)
    assert result.time_source == "tz_from_position"
    assert result.clock_skew_s is None


def test_local_time_without_zone_or_gps_is_unknown() -> None:
    result = resolve_capture_time(ExifFacts(local_time=datetime(2023, 7, 1, 16, 0)), lat=None, lon=None,
                                  uploaded_at_utc=UPLOADED)
    assert (result.taken_at_utc, result.time_source, result.clock_skew_s) == (None, "unknown", None)


def test_camera_clock_a_day_off_is_flagged(shared_data: Path) -> None:
    # Manifest: GPSDateStamp (UTC) is one day after DateTimeOriginal.
    facts = read_exif((shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes())
    result = resolve_capture_time(facts, lat=facts.lat, lon=facts.lon, uploaded_at_utc=UPLOADED)
    assert result.time_source == "gps"
    assert result.taken_at_utc == datetime(2008, 10, 23, 14, 27, 7, 240_000, tzinfo=UTC)
    assert result.clock_skew_s is not None and result.clock_skew_s < -23 * 3600
    assert CLOCK_DISAGREES in result.flags


def test_real_phone_with_offset(shared_data: Path) -> None:
    facts = read_exif((shared_data / "exif/android_nokia_8.3_5g.jpg").read_bytes())
    result = resolve_capture_time(facts, lat=facts.lat, lon=facts.lon, uploaded_at_utc=UPLOADED)
    assert result.taken_at_utc == datetime(2022, 8, 14, 11, 12, 31, tzinfo=UTC)
    assert result.time_source == "exif_offset"
    assert result.flags == ()


@pytest.mark.parametrize(
    ("local", "gps_time", "expected"),
    [(datetime(2012, 9, 29, 16, 11, 25), time(23, 11, 25), datetime(2012, 9, 29, 23, 11, 25)),
     (datetime(2012, 9, 29, 20, 0, 0), time(3, 0, 0), datetime(2012, 9, 30, 3, 0, 0))],
    ids=["same-day", "next-day-in-utc"],
)
def test_gps_time_without_date_takes_the_nearest_day(
    local: datetime, gps_time: time, expected: datetime
) -> None:
    facts = ExifFacts(local_time=local, gps_time=gps_time, gps_status="ok")
    result = resolve_capture_time(facts, lat=SEATTLE[0], lon=SEATTLE[1], uploaded_at_utc=UPLOADED)
    assert result.taken_at_utc == expected.replace(tzinfo=UTC)
    assert result.time_source == "gps"
    assert GPS_DATE_INFERRED in result.flags
    assert result.clock_skew_s == 0.0


def test_gps_time_from_a_receiver_without_fix_is_ignored() -> None:
    facts = ExifFacts(local_time=datetime(2017, 11, 27, 1, 1, 1), gps_date=date(2017, 1, 1),
                      gps_time=time(0, 0), gps_status="invalid")
    result = resolve_capture_time(facts, lat=None, lon=None, uploaded_at_utc=UPLOADED)
    assert result.time_source == "unknown"
    assert GPS_IGNORED in result.flags


def test_capture_after_upload_and_reset_clock_are_flagged() -> None:
    future = ExifFacts(local_time=datetime(2024, 6, 1, 13, 0), utc_offset=timedelta(0))
    assert AFTER_UPLOAD in resolve_capture_time(future, lat=None, lon=None, uploaded_at_utc=UPLOADED).flags
    reset = ExifFacts(local_time=datetime(1970, 1, 1, 0, 5), utc_offset=timedelta(0))
    flags = resolve_capture_time(reset, lat=None, lon=None, uploaded_at_utc=UPLOADED).flags
    assert IMPLAUSIBLY_OLD in flags and AFTER_UPLOAD not in flags


def test_small_gps_lag_is_not_a_disagreement() -> None:
    facts = ExifFacts(local_time=datetime(2010, 5, 15, 17, 12, 5), gps_date=date(2010, 5, 15),
                      gps_time=time(15, 12, 7), gps_status="ok")
    result = resolve_capture_time(facts, lat=51.7786, lon=8.3656, uploaded_at_utc=UPLOADED)
    assert result.clock_skew_s == -2.0
    assert CLOCK_DISAGREES not in result.flags


def test_naive_upload_time_is_refused() -> None:
    with pytest.raises(ValueError, match="uploaded_at_utc must be timezone-aware"):
        resolve_capture_time(ExifFacts(), lat=None, lon=None, uploaded_at_utc=datetime(2024, 1, 1))
