"""decode_image: formats, upright orientation, and refusal of bombs, broken and foreign files."""

from __future__ import annotations

import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image

from beam_jobs.extraction.decode import UnreadableImage, decode_image

MAX_PIXELS = 50_000_000

# (width, height) after orientation, checked by eye against the photos.
UPRIGHT = {
    "exif/orientation_landscape_3.jpg": (600, 450),
    "exif/orientation_landscape_6.jpg": (600, 450),
    "exif/orientation_portrait_8.jpg": (450, 600),
    "exif/orientation_portrait_5_transpose.jpg": (450, 600),
    "exif/canon_sx60_rotated_nogps.jpg": (1536, 2048),
    "exif/samsung_gt-i9000_null_island.jpg": (480, 640),
    "exif/samsung_sm-j327t1_nogps_rot90.jpg": (1932, 2576),
    "exif/iphone_5_rot180.jpg": (3264, 2448),
    "exif/iphone_x_exif_in_webp.webp": (240, 320),
    # pillow-heif applies the HEIF irot box itself; EXIF Orientation=6 must not rotate it again.
    "exif/iphone_xr_rot90.heic": (3024, 4032),
}
FORMATS = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".heic": "HEIF", ".heif": "HEIF"}


def _chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def _png_header(width: int, height: int) -> bytes:
    """A PNG claiming width x height whose only pixel data is 16 bytes of garbage (a few bytes total)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = _chunk(b"IDAT", b"\xde\xad" * 8)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + pixels + _chunk(b"IEND", b"")


def test_every_exif_photo_decodes_or_is_refused_cleanly(shared_data: Path, exif_file: str) -> None:
    data = (shared_data / exif_file).read_bytes()
    try:
        decoded = decode_image(data, max_pixels=MAX_PIXELS)
    except UnreadableImage as exc:
        assert exc.reason in {"corrupt", "unsupported_format"}, exc
        return
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (decoded.width, decoded.height)
    assert decoded.format == FORMATS[Path(exif_file).suffix.lower()]
    if exif_file in UPRIGHT:
        assert (decoded.width, decoded.height) == UPRIGHT[exif_file]


def test_orientation_rotates_pixels_not_just_size(shared_data: Path) -> None:
    data = (shared_data / "exif/orientation_landscape_6.jpg").read_bytes()
    raw = Image.open(BytesIO(data)).convert("RGB")
    decoded = decode_image(data, max_pixels=MAX_PIXELS)
    # Orientation 6 means "rotate 90 degrees clockwise to display".
    expected = raw.transpose(Image.Transpose.ROTATE_270)
    assert decoded.image.tobytes() == expected.tobytes()


def test_photo_with_unreadable_exif_keeps_its_pixels_and_says_orientation_was_not_applied(shared_data: Path) -> None:
    # Found by fuzzing: the Exif item's TIFF-header offset (4 bytes at 3319) moved from 6 to 7. The pixels are
    # intact; only the EXIF, and so the orientation, is unreadable. The photo must not be lost over it.
    original = (shared_data / "exif/iphone_11_pro_IMG_2927_original_nogps.HEIC").read_bytes()
    assert original[3319:3323] == struct.pack(">I", 6)
    damaged = original[:3319] + struct.pack(">I", 7) + original[3323:]
    decoded = decode_image(damaged, max_pixels=MAX_PIXELS)
    intact = decode_image(original, max_pixels=MAX_PIXELS)
    assert decoded.orientation_problem is not None and "orientation not applied" in decoded.orientation_problem
    assert intact.orientation_problem is None
    # This photo needs no rotation (orientation 1), so both decodes are the same pixels.
    assert decoded.image.tobytes() == intact.image.tobytes()


def test_png_header_claiming_30000_squared_is_refused_before_decoding() -> None:
    with pytest.raises(UnreadableImage) as caught:
        decode_image(_png_header(30_000, 30_000), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "too_many_pixels"


def test_our_pixel_limit_applies_from_the_header_alone() -> None:
    # 5000x5000 is under Pillow's own limit; no IDAT, so reaching the decoder would say "corrupt".
    with pytest.raises(UnreadableImage) as caught:
        decode_image(_png_header(5_000, 5_000), max_pixels=1_000_000)
    assert caught.value.reason == "too_many_pixels"
    assert "5000x5000" in caught.value.detail


def test_real_photo_over_the_limit_is_refused(shared_data: Path) -> None:
    data = (shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes()
    with pytest.raises(UnreadableImage, match="max_pixels=1000"):
        decode_image(data, max_pixels=1_000)


@pytest.mark.parametrize(
    "name",
    [
        "exif/gaia_nikon_p6000_DSCN0010.jpg",
        "exif/png_exif_chunk_gps.png",
        "exif/iphone_x_exif_in_webp.webp",
        # libheif happily decodes this with half its tiles missing; the box check catches it.
        "exif/iphone_xr_rot90.heic",
        "exif/android_nokia_8.3_5g_hdr.heif",
    ],
)
@pytest.mark.parametrize("kept", [0.5, 0.98])
def test_truncated_photo_is_corrupt(shared_data: Path, name: str, kept: float) -> None:
    data = (shared_data / name).read_bytes()
    with pytest.raises(UnreadableImage) as caught:
        decode_image(data[: int(len(data) * kept)], max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


def test_png_with_garbage_pixels_is_corrupt() -> None:
    with pytest.raises(UnreadableImage) as caught:
        decode_image(_png_header(64, 64), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


def test_png_cut_inside_the_header_is_corrupt_not_foreign() -> None:
    with pytest.raises(UnreadableImage) as caught:
        decode_image(_png_header(64, 64)[:20], max_pixels=MAX_PIXELS)
    assert caught.value.reason == "corrupt"


@pytest.mark.parametrize(
    "data",
    [b"Dear police, I saw everything.\n", b"%PDF-1.7\n", b"\x00" * 64],
    ids=["text", "pdf", "zeros"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnreadableImage) as caught:
        decode_image(data, max_pixels=MAX_PIXELS)
    assert caught.value.reason == "unsupported_format"


@pytest.mark.parametrize("image_format", ["GIF", "TIFF", "BMP"])
def test_valid_images_in_other_formats_are_refused(image_format: str) -> None:
    out = BytesIO()
    Image.new("RGB", (8, 8)).save(out, format=image_format)
    with pytest.raises(UnreadableImage) as caught:
        decode_image(out.getvalue(), max_pixels=MAX_PIXELS)
    assert caught.value.reason == "unsupported_format"


def test_empty_upload_is_refused() -> None:
    with pytest.raises(UnreadableImage) as caught:
        decode_image(b"", max_pixels=MAX_PIXELS)
    assert caught.value.reason == "empty"


def test_palette_png_with_transparency_becomes_rgb() -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    out = BytesIO()
    image.save(out, format="PNG", transparency=0)
    decoded = decode_image(out.getvalue(), max_pixels=MAX_PIXELS)
    assert decoded.format == "PNG"
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0)


def test_non_positive_limit_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="max_pixels"):
        decode_image(b"x", max_pixels=0)
