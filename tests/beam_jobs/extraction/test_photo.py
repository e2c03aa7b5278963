"""extract_photo end to end on real photos: position and time provenance, rejections."""

from __future__ import annotations

from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from beam_jobs.extraction.photo import RejectedPhoto, extract_photo, photo_id_for
from beam_jobs.records import PhotoFacts

UPLOADED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def _extract(
    data: bytes, *, device_position: tuple[float, float] | None = None, max_pixels: int = 50_000_000
) -> tuple[PhotoFacts, bytes]:
    extracted = extract_photo(
        data, object_key="evidence/ev1/abc.jpg", event_id="ev1", submission_id="sub1",
        uploaded_at_utc=UPLOADED, device_position=device_position, max_pixels=max_pixels,
    )
    return extracted.facts, extracted.thumbnail


def test_gps_photo(shared_data: Path, manifest: dict[str, dict[str, str]]) -> None:
    name = "exif/gaia_nikon_p6000_DSCN0010.jpg"
    facts, thumb = _extract((shared_data / name).read_bytes(), device_position=(51.5, -0.1))
    assert facts.sha256 == manifest[name]["sha256"]
    assert facts.photo_id == photo_id_for(event_id="ev1", submission_id="sub1", sha256=facts.sha256)
    assert (facts.format, facts.width, facts.height) == ("JPEG", 640, 480)
    assert facts.position_source == "exif"  # EXIF GPS beats the device position
    assert facts.lat == pytest.approx(43.467448, abs=1e-4)
    assert facts.place_name == "Arezzo, Tuscany, IT"
    assert facts.time_source == "gps"
    assert facts.taken_local == datetime(2008, 10, 22, 16, 28, 39)
    assert (facts.make, facts.model) == ("NIKON", "COOLPIX P6000")
    assert len(facts.phash) == 16
    assert Image.open(BytesIO(thumb)).format == "JPEG"


def test_device_position_fills_in_and_gives_the_time_zone(shared_data: Path) -> None:
    data = (shared_data / "exif/canon_sx60_rotated_nogps.jpg").read_bytes()
    facts, _ = _extract(data, device_position=(52.52, 13.405))
    assert (facts.position_source, facts.lat, facts.lon, facts.alt) == ("device", 52.52, 13.405, None)
    assert facts.time_source == "tz_from_position"
    assert facts.taken_at_utc == datetime(2015, 2, 9, 21, 47, 44, tzinfo=UTC)  # Berlin, winter: +01:00
    assert (facts.width, facts.height) == (1536, 2048)


@pytest.mark.parametrize("device_position", [None, (0.0, 0.0), (123.0, 10.0)])
def test_no_usable_position_anywhere(shared_data: Path, device_position: tuple[float, float] | None) -> None:
    data = (shared_data / "exif/samsung_gt-i9000_null_island.jpg").read_bytes()
    facts, _ = _extract(data, device_position=device_position)
    assert (facts.position_source, facts.lat, facts.lon, facts.place_name) == ("none", None, None, None)
    assert facts.time_source == "unknown"
    assert any("0,0" in problem for problem in facts.exif_problems)


def test_same_bytes_in_another_submission_is_another_photo(shared_data: Path) -> None:
    data = (shared_data / "exif/iphone_xr_tiny_2852b.jpg").read_bytes()
    first, _ = _extract(data)
    again, _ = _extract(data)
    other = photo_id_for(event_id="ev1", submission_id="sub2", sha256=first.sha256)
    assert first.photo_id == again.photo_id != other


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"I was at the station at 9", "unsupported_format"), (b"", "empty"),
     (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "corrupt")],
)
def test_rejections_carry_reason_and_hash(data: bytes, reason: str) -> None:
    with pytest.raises(RejectedPhoto) as caught:
        _extract(data)
    assert caught.value.reason == reason
    assert caught.value.sha256 is not None and len(caught.value.sha256) == 64


def test_oversized_photo_is_rejected(shared_data: Path) -> None:
    with pytest.raises(RejectedPhoto) as caught:
        _extract((shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes(), max_pixels=10_000)
    assert caught.value.reason == "too_many_pixels"


def test_photo_with_unreadable_exif_is_kept_and_the_problem_recorded(shared_data: Path) -> None:
    original = (shared_data / "exif/iphone_11_pro_IMG_2927_original_nogps.HEIC").read_bytes()
    damaged = original[:3319] + (7).to_bytes(4, "big") + original[3323:]  # the Exif TIFF-header offset, was 6
    facts, thumb = _extract(damaged)
    assert (facts.width, facts.height) == (3024, 4032)
    assert any("orientation not applied" in problem for problem in facts.exif_problems)
    assert Image.open(BytesIO(thumb)).size[1] > 0
