"""Fuzzing `decode_image` and `extract_photo` with mutated real photos (JPEG, PNG, WebP, HEIC).

The contract under test: any bytes give either an upright RGB image within `max_pixels` (a record
and an EXIF-free thumbnail), or the documented rejection (`UnreadableImage` / `RejectedPhoto`) with a
known reason code and a message naming the problem. Any other exception is a crash of the Beam
DoFn, i.e. a photo lost to the dead-letter-less path.

CI runs a small derandomised set (seconds); `-m slow` runs the 10,000-case nightly-style set:

    .venv/bin/pytest tests/beam_jobs/extraction/test_fuzz_images.py -m slow
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from beam_jobs.extraction.decode import UnreadableImage, decode_image
from beam_jobs.extraction.photo import RejectedPhoto, extract_photo
from tests.reliability.mutations import EXIF_DONORS, HEIF_SEEDS, SMALL_SEEDS, load, mutated, set_declared_size
from tests.reliability.nightly import skip_unless_slow_selected

MAX_PIXELS = 4_000_000  # above every small seed; HEIF seeds (12-16 MP) exercise the refusal path
HEIF_MAX_PIXELS = 20_000_000
REASONS = {"empty", "corrupt", "unsupported_format", "too_many_pixels"}
# Pillow reports corrupt EXIF and huge headers as warnings; production does not escalate them, so the
# fuzz records them instead of letting `filterwarnings = error` turn them into crashes.
TOLERATED_WARNINGS = (Image.DecompressionBombWarning, UserWarning)
UPLOADED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T = TypeVar("T")

CI = settings(
    max_examples=200, derandomize=True, deadline=None, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
NIGHTLY = settings(CI, max_examples=10_000, derandomize=False)


def _tolerating_warnings(call: Callable[[], T]) -> T:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    unexpected = [w for w in caught if not issubclass(w.category, TOLERATED_WARNINGS)]
    assert not unexpected, [f"{w.category.__name__}: {w.message}" for w in unexpected]
    return result


def check_decode(data: bytes, max_pixels: int) -> None:
    try:
        decoded = _tolerating_warnings(lambda: decode_image(data, max_pixels=max_pixels))
    except UnreadableImage as refused:
        assert refused.reason in REASONS, refused
        assert refused.detail and str(refused).startswith(refused.reason), refused
        return
    image = decoded.image
    assert image.mode == "RGB"
    # The pixel limit holds for what was decoded, not only for what the header claimed.
    assert image.width * image.height <= max_pixels, (image.size, max_pixels)


def check_extract(data: bytes, max_pixels: int) -> None:
    try:
        extracted = _tolerating_warnings(
            lambda: extract_photo(
                data, object_key="originals/fuzz", event_id="ev", submission_id="sub",
                uploaded_at_utc=UPLOADED, device_position=(48.85, 2.35), max_pixels=max_pixels,
            )
        )
        facts, thumbnail = extracted.facts, extracted.thumbnail
    except RejectedPhoto as rejected:
        assert rejected.reason in REASONS, rejected
        assert rejected.sha256 is not None and len(rejected.sha256) == 64
        return
    assert facts.width * facts.height <= max_pixels
    assert facts.lat is None or -90 <= facts.lat <= 90
    assert facts.lon is None or -180 <= facts.lon <= 180
    with Image.open(BytesIO(thumbnail)) as thumb:
        assert thumb.format == "JPEG" and not thumb.getexif(), "thumbnail must carry no EXIF"


@pytest.fixture(scope="module")
def small_seeds(shared_data: Path) -> list[bytes]:
    return load(shared_data, SMALL_SEEDS)


@pytest.fixture(scope="module")
def heif_seeds(shared_data: Path) -> list[bytes]:
    return load(shared_data, HEIF_SEEDS)


@pytest.fixture(scope="module")
def donors(shared_data: Path) -> list[bytes]:
    return load(shared_data, EXIF_DONORS)


def test_fuzz_decode(small_seeds: list[bytes], donors: list[bytes]) -> None:
    @CI
    @given(mutated(small_seeds, donors))
    def run(data: bytes) -> None:
        check_decode(data, MAX_PIXELS)

    run()


def test_fuzz_decode_heif_headers(heif_seeds: list[bytes]) -> None:
    # Full HEIC decodes cost ~0.5 s, so CI keeps this short; the nightly set runs thousands.
    @settings(CI, max_examples=25)
    @given(mutated(heif_seeds))
    def run(data: bytes) -> None:
        check_decode(data, HEIF_MAX_PIXELS)

    run()


@pytest.mark.parametrize("size", [(1, 1), (0, 0), (0xFFFF, 0xFFFF), (2**31 - 1, 2), (10, 10)])
def test_declared_size_lies_are_refused_or_bounded(small_seeds: list[bytes], heif_seeds: list[bytes],
                                                   size: tuple[int, int]) -> None:
    """Headers shrunk or blown up: never a crash, never more pixels than allowed (HEIF `ispe` included)."""
    for seed in [*small_seeds, heif_seeds[0]]:
        check_decode(set_declared_size(seed, *size), MAX_PIXELS)


def test_fuzz_extract_photo(small_seeds: list[bytes], donors: list[bytes]) -> None:
    @settings(CI, max_examples=100)
    @given(mutated(small_seeds, donors))
    def run(data: bytes) -> None:
        check_extract(data, MAX_PIXELS)

    run()


def test_fuzz_arbitrary_bytes() -> None:
    @CI
    @given(st.binary(max_size=512) | st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\0\0\0\0WEBP"])
           .flatmap(lambda magic: st.binary(max_size=256).map(lambda tail: magic + tail)))
    def run(data: bytes) -> None:
        check_decode(data, MAX_PIXELS)

    run()


@pytest.mark.slow
def test_fuzz_decode_nightly(request: pytest.FixtureRequest, small_seeds: list[bytes], donors: list[bytes]) -> None:
    skip_unless_slow_selected(request)

    @NIGHTLY
    @given(mutated(small_seeds, donors))
    def run(data: bytes) -> None:
        check_decode(data, MAX_PIXELS)

    run()


@pytest.mark.slow
def test_fuzz_heif_nightly(request: pytest.FixtureRequest, heif_seeds: list[bytes]) -> None:
    skip_unless_slow_selected(request)

    @settings(NIGHTLY, max_examples=2_000)
    @given(mutated(heif_seeds))
    def run(data: bytes) -> None:
        check_decode(data, HEIF_MAX_PIXELS)

    run()


@pytest.mark.slow
def test_fuzz_extract_photo_nightly(
    request: pytest.FixtureRequest, small_seeds: list[bytes], donors: list[bytes]
) -> None:
    skip_unless_slow_selected(request)

    @NIGHTLY
    @given(mutated(small_seeds, donors))
    def run(data: bytes) -> None:
        check_extract(data, MAX_PIXELS)

    run()
