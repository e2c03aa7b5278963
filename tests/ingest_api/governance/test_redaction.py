"""Redaction on real photos: no EXIF out, bystander regions destroyed, the rest of the picture kept."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from beam_jobs.extraction.decode import decode_image
from ingest_api.governance.redaction import (
    Detected,
    Region,
    bystander_regions,
    grown_box,
    pixelate_regions,
    redact_photo,
    share_inside,
)

MAX_PIXELS = 100_000_000
MARGIN = 0.15


def _upright(data: bytes) -> NDArray[np.uint8]:
    return np.asarray(decode_image(data, max_pixels=MAX_PIXELS).image, dtype=np.uint8)


def _decoded_jpeg(data: bytes) -> NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)


def _sharpness(pixels: NDArray[np.uint8]) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


@pytest.mark.parametrize(
    "name", ["exif/gaia_nikon_p6000_DSCN0010.jpg", "faces/obama_2012_portrait.jpg", "exif/orientation_landscape_6.jpg"]
)
def test_redacted_photo_has_no_exif_blurred_regions_and_intact_rest(shared_data: Path, name: str) -> None:
    data = (shared_data / name).read_bytes()
    original = _upright(data)
    height, width = original.shape[:2]
    regions = [
        Region(width * 0.35, height * 0.2, width * 0.25, height * 0.3),
        Region(width * 0.05, height * 0.7, 60, 30),
    ]

    redacted = redact_photo(data, regions, max_pixels=MAX_PIXELS)

    assert redacted.startswith(b"\xff\xd8\xff") and b"Exif\x00\x00" not in redacted
    with Image.open(io.BytesIO(redacted)) as image:
        assert image.format == "JPEG" and not image.getexif() and "exif" not in image.info
        assert image.size == (width, height)  # upright: the orientation was applied, not carried as a tag
    output = _decoded_jpeg(redacted).astype(np.int16)
    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        box = grown_box(region, width, height, MARGIN)
        assert box is not None
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = True
        before, after = original[y0:y1, x0:x1], output[y0:y1, x0:x1].astype(np.uint8)
        assert np.abs(after.astype(np.int16) - before).mean() > 4, f"{name}: region {region} barely changed"
        assert _sharpness(after) < 0.2 * _sharpness(before), f"{name}: region {region} still sharp"
    # Outside the regions (and the 16-pixel JPEG blocks they touch): what re-encoding alone gives, and close to
    # the original within JPEG noise.
    kept = ~cv2.dilate(mask.astype(np.uint8), np.ones((33, 33), np.uint8)).astype(bool)
    plain = _decoded_jpeg(redact_photo(data, [], max_pixels=MAX_PIXELS)).astype(np.int16)
    assert np.abs(output - plain)[kept].max() <= 2
    difference = np.abs(output - original.astype(np.int16))[kept]
    assert difference.mean() < 5 and np.percentile(difference, 99) < 40


def test_pixelate_leaves_outside_pixels_exact_and_input_untouched() -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)
    copy = pixels.copy()
    out = pixelate_regions(pixels, [Region(150, 100, 40, 40), Region(10, 10, 0, 0)], margin=0.0)
    assert np.array_equal(pixels, copy)  # pure: the input is not modified
    assert np.array_equal(out[:100], pixels[:100]) and np.array_equal(out[:, :150], pixels[:, :150])
    assert not np.array_equal(out[100:, 150:], pixels[100:, 150:])  # clipped at the edge, still redacted
    with pytest.raises(ValueError, match="negative"):
        pixelate_regions(pixels, [Region(0, 0, -5, 5)])
    with pytest.raises(ValueError, match=r"\(h, w, 3\) uint8"):
        pixelate_regions(pixels[:, :, 0], [])


def test_only_bystanders_are_blurred_and_a_subject_vehicles_plate_stays() -> None:
    car, other_car = Region(100, 100, 400, 200), Region(600, 100, 300, 200)
    detections = [
        Detected("car", "vehicle", car), Detected("other-car", "vehicle", other_car),
        Detected("car-plate", "plate", Region(250, 250, 80, 25)),  # inside the subject car
        Detected("other-plate", "plate", Region(700, 250, 80, 25)),  # on a bystander's car
        Detected("edge-plate", "plate", Region(480, 250, 80, 25)),  # mostly outside the subject car
        Detected("driver", "face", Region(300, 130, 40, 40)),  # inside the car, but a face: blurred
        Detected("suspect", "face", Region(50, 20, 40, 40)), Detected("walker", "person", Region(0, 0, 60, 300)),
    ]
    blur, keep = bystander_regions(detections, {"car", "suspect"})
    assert blur == [Region(700, 250, 80, 25), Region(480, 250, 80, 25), Region(300, 130, 40, 40)]
    assert keep == [car, Region(50, 20, 40, 40)]
    blur, keep = bystander_regions(detections, set())
    assert len(blur) == 5 and keep == []  # faces and plates only: vehicles and persons are not redacted
    assert share_inside(Region(480, 250, 80, 25), car) == pytest.approx(0.25)
    assert share_inside(Region(0, 0, 0, 0), car) == 0.0


def test_keep_restores_a_subject_except_under_a_bystanders_own_box() -> None:
    pixels = np.random.default_rng(11).integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    subject, bystander = Region(50, 50, 100, 100), Region(140, 60, 30, 30)  # overlapping: the margin grows in
    out = pixelate_regions(pixels, [bystander], keep=[subject])
    assert np.array_equal(out[50:150, 50:140], pixels[50:150, 50:140])  # subject, margin of the bystander included
    assert not np.array_equal(out[60:90, 140:150], pixels[60:90, 140:150])  # the bystander's own box inside it
    x0, y0, x1, y1 = grown_box(bystander, 300, 200, 0.15) or (0, 0, 0, 0)
    assert not np.array_equal(out[y0:y1, 150:x1], pixels[y0:y1, 150:x1])
    assert np.array_equal(out[:, 180:], pixels[:, 180:]) and np.array_equal(out[160:], pixels[160:])
