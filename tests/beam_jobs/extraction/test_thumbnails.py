"""make_thumbnail: size limits and, above all, no metadata left in the output."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import exifread
import pytest
from PIL import Image

from beam_jobs.extraction.decode import decode_image
from beam_jobs.extraction.thumbnails import make_thumbnail

GPS_PHOTOS = [
    "exif/gaia_nikon_p6000_DSCN0010.jpg",
    "exif/iphone_xr_rot90.heic",
    "exif/png_exif_chunk_gps.png",
    "exif/iphone_x_exif_in_webp.webp",
    "exif/no_exif_xmp_only.jpg",
]


@pytest.mark.parametrize("name", GPS_PHOTOS)
def test_thumbnail_carries_no_metadata(shared_data: Path, name: str) -> None:
    decoded = decode_image((shared_data / name).read_bytes(), max_pixels=50_000_000)
    assert decoded.image.info  # the source did carry metadata along
    thumb = make_thumbnail(decoded.image)
    assert exifread.process_file(BytesIO(thumb), details=False) == {}
    for marker in (b"Exif\x00\x00", b"http://ns.adobe.com/xap", b"ICC_PROFILE", b"Photoshop", b"GPS"):
        assert marker not in thumb
    with Image.open(BytesIO(thumb)) as opened:
        assert opened.format == "JPEG"
        assert len(opened.getexif()) == 0
        assert not {"exif", "xmp", "icc_profile", "photoshop", "comment"} & set(opened.info)


def test_thumbnail_fits_the_box_and_keeps_the_aspect(shared_data: Path) -> None:
    decoded = decode_image((shared_data / "exif/iphone_xr_rot90.heic").read_bytes(), max_pixels=50_000_000)
    with Image.open(BytesIO(make_thumbnail(decoded.image, max_side=200))) as thumb:
        assert thumb.size == (150, 200)  # upright portrait 3024x4032


def test_small_images_are_not_enlarged() -> None:
    with Image.open(BytesIO(make_thumbnail(Image.new("RGB", (30, 20))))) as thumb:
        assert thumb.size == (30, 20)


def test_non_positive_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_side"):
        make_thumbnail(Image.new("RGB", (4, 4)), max_side=0)
