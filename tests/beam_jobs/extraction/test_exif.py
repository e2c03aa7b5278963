"""read_exif against the manifest's ground truth, and hand-built EXIF that lies in known ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
from PIL.TiffImagePlugin import IFDRational

from beam_jobs.extraction.exif import ExifFacts, read_exif

GroundTruth = Callable[[str], dict[str, str]]
MakeJpeg = Callable[..., bytes]

# GPS IFD tag numbers
LAT_REF, LAT, LON_REF, LON, ALT_REF, ALT, GPS_TIME, GPS_DATE = 1, 2, 3, 4, 5, 6, 7, 0x1D
DATETIME_ORIGINAL, SUBSEC_ORIGINAL, OFFSET_ORIGINAL = 0x9003, 0x9291, 0x9011


def _dms(degrees: int, minutes: int, seconds: float) -> tuple[IFDRational, ...]:
    return (IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(round(seconds * 100), 100))


def _facts(shared_data: Path, exif_file: str) -> ExifFacts:
    return read_exif((shared_data / exif_file).read_bytes())


def test_gps_position_matches_ground_truth(
    shared_data: Path, manifest: dict[str, dict[str, str]], ground_truth: GroundTruth, exif_file: str
) -> None:
    truth = ground_truth(manifest[exif_file]["ground_truth"])
    facts = _facts(shared_data, exif_file)
    expected = truth.get("gps", "")
    if not expected or expected.startswith("INVALID"):
        assert (facts.lat, facts.lon, facts.alt) == (None, None, None)
        assert facts.gps_status == ("invalid" if expected else "absent")
        return
    lat, lon = (float(part) for part in expected.split(","))
    assert facts.gps_status == "ok"
    assert facts.lat == pytest.approx(lat, abs=1e-4)
    assert facts.lon == pytest.approx(lon, abs=1e-4)
    if "alt_m" in truth:
        assert facts.alt == pytest.approx(float(truth["alt_m"]), abs=0.01)


def test_times_match_ground_truth(
    shared_data: Path, manifest: dict[str, dict[str, str]], ground_truth: GroundTruth, exif_file: str
) -> None:
    truth = ground_truth(manifest[exif_file]["ground_truth"])
    facts = _facts(shared_data, exif_file)
    if "datetime_original" in truth:
        assert facts.local_time is not None
        expected = datetime.strptime(truth["datetime_original"], "%Y:%m:%d %H:%M:%S")
        assert facts.local_time.replace(microsecond=0) == expected
    else:
        assert facts.local_time_tag != "DateTimeOriginal"
    if "offset_time_original" in truth:
        sign, hours, minutes = truth["offset_time_original"][0], *truth["offset_time_original"][1:].split(":")
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        assert facts.utc_offset == (-offset if sign == "-" else offset)
    if "gps_utc" in truth:
        date_part, time_part = truth["gps_utc"].split(" ", 1)
        try:
            expected_date: date | None = datetime.strptime(date_part, "%Y:%m:%d").date()
        except ValueError:  # "?", "0000:00:00", "2014:09:259"
            expected_date = None
        assert facts.gps_date == expected_date
        if time_part == "?" or time_part.startswith("invalid"):
            assert facts.gps_time is None
        else:
            assert facts.gps_time == time.fromisoformat(time_part)


def test_camera_fields_match_ground_truth(
    shared_data: Path, manifest: dict[str, dict[str, str]], ground_truth: GroundTruth, exif_file: str
) -> None:
    truth = ground_truth(manifest[exif_file]["ground_truth"])
    facts = _facts(shared_data, exif_file)
    assert facts.make == truth.get("make")
    assert facts.model == truth.get("model")
    if "orientation" in truth:
        assert facts.orientation == int(truth["orientation"])


def test_lens_and_software_are_read(shared_data: Path) -> None:
    facts = _facts(shared_data, "exif/canon_600d_yosemite.jpg")
    assert facts.lens == "EF-S15-85mm f/3.5-5.6 IS USM"
    assert facts.software == "Adobe Photoshop Lightroom 6.1 (Windows)"
    assert facts.local_time == datetime(2015, 6, 12, 13, 40, 32, 410_000)  # SubSecTimeOriginal "41"


def test_southern_western_hemispheres(make_jpeg: MakeJpeg) -> None:
    gps = {LAT_REF: "S", LAT: _dms(33, 52, 12.5), LON_REF: "W", LON: _dms(70, 40, 0), ALT_REF: b"\x01",
           ALT: IFDRational(125, 10)}
    facts = read_exif(make_jpeg(gps=gps))
    assert facts.lat == pytest.approx(-(33 + 52 / 60 + 12.5 / 3600))
    assert facts.lon == pytest.approx(-(70 + 40 / 60))
    assert facts.alt == pytest.approx(-12.5)  # AltitudeRef 1: below sea level


@pytest.mark.parametrize(
    "gps",
    [
        {LAT_REF: "N", LAT: (IFDRational(0, 0),) * 3, LON_REF: "E", LON: (IFDRational(0, 0),) * 3},
        {LAT_REF: "N", LAT: (IFDRational(45, 1), IFDRational(0, 0), IFDRational(0, 1)), LON_REF: "E",
         LON: _dms(9, 6, 0)},
        {LAT: _dms(45, 30, 0), LON: _dms(9, 6, 0)},
        {LAT_REF: "", LAT: _dms(45, 30, 0), LON_REF: "", LON: _dms(9, 6, 0)},
        {LAT_REF: "N", LAT: _dms(45, 30, 0), LON_REF: "X", LON: _dms(9, 6, 0)},
        {LAT_REF: "N", LAT: _dms(0, 0, 0), LON_REF: "E", LON: _dms(0, 0, 0)},
        {LAT_REF: "N", LAT: _dms(95, 0, 0), LON_REF: "E", LON: _dms(9, 6, 0)},
        {LAT_REF: "N", LAT: _dms(45, 75, 0), LON_REF: "E", LON: _dms(9, 6, 0)},
    ],
    ids=["all-zero-denominators", "one-zero-denominator", "missing-refs", "empty-refs", "bad-ref",
         "null-island", "latitude-over-90", "minutes-over-60"],
)
def test_lying_gps_gives_no_position_and_says_why(make_jpeg: MakeJpeg, gps: dict[int, object]) -> None:
    facts = read_exif(make_jpeg(gps={**gps, ALT: IFDRational(340, 1)}))
    assert (facts.lat, facts.lon, facts.alt) == (None, None, None)
    assert facts.gps_status == "invalid"
    assert any("GPS position" in problem for problem in facts.problems)


def test_decimal_degrees_in_one_rational_and_minutes_only(make_jpeg: MakeJpeg) -> None:
    gps = {LAT_REF: "N", LAT: (IFDRational(4346745, 100000),), LON_REF: "E",
           LON: (IFDRational(11, 1), IFDRational(5311, 100), IFDRational(0, 1))}
    facts = read_exif(make_jpeg(gps=gps))
    assert facts.lat == pytest.approx(43.46745)
    assert facts.lon == pytest.approx(11 + 53.11 / 60)


def test_local_time_subseconds_offset_and_gps_time(make_jpeg: MakeJpeg) -> None:
    facts = read_exif(make_jpeg(
        exif_ifd={DATETIME_ORIGINAL: "2024:05:01 21:59:58", SUBSEC_ORIGINAL: "0532",
                  OFFSET_ORIGINAL: "-04:30"},
        gps={LAT_REF: "N", LAT: _dms(10, 0, 0), LON_REF: "W", LON: _dms(66, 0, 0), GPS_DATE: "2024:05:02",
             GPS_TIME: (IFDRational(2, 1), IFDRational(29, 1), IFDRational(5925, 100))},
    ))
    assert facts.local_time == datetime(2024, 5, 1, 21, 59, 58, 53_200)
    assert facts.utc_offset == -timedelta(hours=4, minutes=30)
    assert facts.gps_date == date(2024, 5, 2)
    assert facts.gps_time == time(2, 29, 59, 250_000)
    assert facts.gps_datetime_utc is not None and facts.gps_datetime_utc.isoformat() == (
        "2024-05-02T02:29:59.250000+00:00"
    )


@pytest.mark.parametrize(
    ("exif_ifd", "gps"),
    [
        ({DATETIME_ORIGINAL: "0000:00:00 00:00:00", OFFSET_ORIGINAL: "+99:00"}, {GPS_DATE: "2014:09:259"}),
        ({DATETIME_ORIGINAL: "    :  :     :  :  ", OFFSET_ORIGINAL: "   :  "}, {GPS_DATE: "0000:00:00"}),
        ({DATETIME_ORIGINAL: "2019:02:30 10:00:00"}, {GPS_TIME: (IFDRational(25, 1),) * 3}),
        ({DATETIME_ORIGINAL: "yesterday"},
         {GPS_TIME: (IFDRational(0, 0), IFDRational(0, 0), IFDRational(13, 1))}),
    ],
    ids=["zero-date-huge-offset", "blank-fields", "feb-30-hour-25", "words-and-zero-denominators"],
)
def test_invalid_dates_and_times_become_none(
    make_jpeg: MakeJpeg, exif_ifd: dict[int, object], gps: dict[int, object]
) -> None:
    facts = read_exif(make_jpeg(exif_ifd=exif_ifd, gps=gps))
    assert (facts.local_time, facts.utc_offset, facts.gps_date, facts.gps_time) == (None, None, None, None)
    assert facts.problems


def test_missing_date_original_falls_back_to_file_datetime(shared_data: Path) -> None:
    facts = _facts(shared_data, "exif/samsung_sm-g930f_zero_length_string.jpg")
    assert facts.local_time == datetime(2016, 9, 12, 10, 5, 31)
    assert facts.local_time_tag == "DateTime"


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM\x00*\x00\x00\x00\x08",
     b"\xff\xd8\xff" * 100],
    ids=["empty", "text", "exif-header-then-nothing", "repeated-markers"],
)
def test_garbage_never_raises(data: bytes) -> None:
    facts = read_exif(data)
    assert facts.lat is None and facts.local_time is None
