"""Fuzzing `read_exif` (and the converters under it) with mutated real photos and built EXIF blocks.

`read_exif` is documented never to raise on malformed metadata: corrupt EXIF must cost us the
fact, never the photo. Every result must also be sane: positions inside the globe, `gps_status`
consistent with the position, problems as readable strings.

    .venv/bin/pytest tests/beam_jobs/extraction/test_fuzz_exif.py            # CI set, seconds
    .venv/bin/pytest tests/beam_jobs/extraction/test_fuzz_exif.py -m slow    # 10,000 cases each
"""

from __future__ import annotations

import struct
import warnings
from fractions import Fraction
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from beam_jobs.extraction.exif import ExifFacts, facts_from_tags, read_exif
from tests.reliability.mutations import (
    EXIF_DONORS,
    HEIF_SEEDS,
    SMALL_SEEDS,
    load,
    mutated,
    splice_exif,
    tiff_structures,
)
from tests.reliability.nightly import skip_unless_slow_selected

CI = settings(
    max_examples=200, derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NIGHTLY = settings(CI, max_examples=10_000, derandomize=False)
TAG_NAMES = (
    "GPSLatitude", "GPSLatitudeRef", "GPSLongitude", "GPSLongitudeRef", "GPSAltitude", "GPSAltitudeRef",
    "GPSTimeStamp", "GPSDateStamp", "DateTimeOriginal", "SubSecTimeOriginal", "OffsetTimeOriginal",
    "DateTimeDigitized", "DateTime", "SubSecTime", "OffsetTime", "Make", "Model", "Orientation",
)
# What the two EXIF parsers hand over: text, bytes, ints, floats, rationals (0/0 included), lists of them.
_SCALARS = (
    st.text(max_size=24)
    | st.binary(max_size=24)
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.builds(Fraction, st.integers(-(2**32), 2**32), st.integers(1, 2**32))
    | st.sampled_from(["2020:02:30 25:61:61", "0000:00:00", "+14:30", "-99:00", "12\u00b2", "\u2460", "N", "S"])
)
RAW_VALUES = _SCALARS | st.lists(_SCALARS, max_size=4) | st.none()


def check_read_exif(data: bytes) -> ExifFacts:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF; production logs do not escalate it
        facts = read_exif(data)
    check_facts(facts)
    return facts


def check_facts(facts: ExifFacts) -> None:
    assert (facts.gps_status == "ok") == (facts.lat is not None and facts.lon is not None)
    if facts.lat is not None and facts.lon is not None:
        assert -90 <= facts.lat <= 90 and -180 <= facts.lon <= 180
        assert (facts.lat, facts.lon) != (0.0, 0.0)
    assert all(isinstance(problem, str) and problem for problem in facts.problems)
    if facts.utc_offset is not None:
        assert abs(facts.utc_offset.total_seconds()) <= 14 * 3600


@pytest.fixture(scope="module")
def seeds(shared_data: Path) -> list[bytes]:
    return load(shared_data, SMALL_SEEDS + EXIF_DONORS + HEIF_SEEDS)


@pytest.fixture(scope="module")
def donors(shared_data: Path) -> list[bytes]:
    return load(shared_data, EXIF_DONORS)


def test_fuzz_read_exif_on_mutated_photos(seeds: list[bytes], donors: list[bytes]) -> None:
    @CI
    @given(mutated(seeds, donors))
    def run(data: bytes) -> None:
        check_read_exif(data)

    run()


def test_fuzz_read_exif_on_built_tiff_structures() -> None:
    jpeg = BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG")

    @CI
    @given(tiff_structures())
    def run(tiff: bytes) -> None:
        check_read_exif(splice_exif(jpeg.getvalue(), tiff))

    run()


def test_fuzz_facts_from_raw_tag_values() -> None:
    @CI
    @given(st.dictionaries(st.sampled_from(TAG_NAMES), RAW_VALUES, max_size=8))
    def run(tags: dict[str, object]) -> None:
        check_facts(facts_from_tags(tags))

    run()


def _jpeg_with_subsec(subsec: bytes) -> bytes:
    """A JPEG whose SubSecTimeOriginal holds exactly `subsec` (4 bytes, ASCII type, as a camera writes it)."""
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: "2020:01:01 10:00:00", 0x9291: "1234"})
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif.tobytes())
    assert len(subsec) == 4 and out.getvalue().count(b"1234\x00") == 1
    return out.getvalue().replace(b"1234\x00", subsec + b"\x00")


@pytest.mark.parametrize("subsec", ["12\u00b2".encode(), "1\u2460".encode()])
def test_read_exif_survives_unicode_digits_in_subsec_time(subsec: bytes) -> None:
    facts = check_read_exif(_jpeg_with_subsec(subsec))
    assert facts.local_time is not None and facts.local_time.microsecond == 0


HEIC = "exif/iphone_11_pro_IMG_2927_original_nogps.HEIC"


def _heic_with_exif_header_offset(heic: bytes, offset: int) -> bytes:
    """The Exif item of an iPhone HEIC starts with a 4-byte offset to the TIFF header (6: past b'Exif\\0\\0')."""
    at = heic.find(b"\x00\x00\x00\x06Exif\x00\x00")
    assert at > 0
    return heic[:at] + struct.pack(">I", offset) + heic[at + 4 :]


@pytest.mark.parametrize("case", ["truncated_at_249", "exif_header_offset_7", "exif_header_offset_0xffff"])
def test_read_exif_survives_broken_heic_boxes(shared_data: Path, case: str) -> None:
    heic = (shared_data / HEIC).read_bytes()
    data = {
        "truncated_at_249": heic[:249],  # BadSize: get(nbytes=4) found 2 bytes
        "exif_header_offset_7": _heic_with_exif_header_offset(heic, 7),  # AssertionError
        "exif_header_offset_0xffff": _heic_with_exif_header_offset(heic, 0xFFFF),  # AssertionError
    }[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_facts(read_exif(data))


@pytest.mark.slow
def test_fuzz_read_exif_nightly(request: pytest.FixtureRequest, seeds: list[bytes], donors: list[bytes]) -> None:
    skip_unless_slow_selected(request)

    @NIGHTLY
    @given(mutated(seeds, donors) | tiff_structures())
    def run(data: bytes) -> None:
        check_read_exif(data)

    run()


@pytest.mark.slow
def test_fuzz_facts_from_raw_tag_values_nightly(request: pytest.FixtureRequest) -> None:
    skip_unless_slow_selected(request)

    @NIGHTLY
    @given(st.dictionaries(st.sampled_from(TAG_NAMES), RAW_VALUES, max_size=8))
    def run(tags: dict[str, object]) -> None:
        check_facts(facts_from_tags(tags))

    run()
