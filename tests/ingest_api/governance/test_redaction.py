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
from ingest_api.governance.redaction import Region, grown_box, pixelate_regions, redact_photo

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
