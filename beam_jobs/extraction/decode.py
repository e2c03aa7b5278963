"""Decode untrusted upload bytes into an upright RGB image, refusing bombs and broken files.

Only JPEG, PNG, WebP and HEIC/HEIF are accepted: Pillow can open dozens of formats (EPS even
calls Ghostscript), and a witness upload has no reason to be anything else.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from io import BytesIO

import pillow_heif
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "HEIF")

# What Pillow and pillow-heif raise on malformed data: SyntaxError and struct.error come from
# header parsers, EOFError and OSError ("image file is truncated") from decoders.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, RuntimeError)


class UnreadableImage(Exception):
    """The bytes are not a usable photo; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """An upright RGB image; width and height are after the EXIF orientation was applied."""

    image: Image.Image
    format: str
    width: int
    height: int
    # Set when the pixels decoded but the EXIF orientation could not be read: the image is then as stored.
    orientation_problem: str | None = None


def sniff_format(data: bytes) -> str | None:
    """The accepted format the magic bytes announce (Pillow's name for it), or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        return "HEIF"
    return None


def _truncated_box(data: bytes) -> str | None:
    """Name the first top-level ISO-BMFF box that runs past the end of `data`, if any.

    libheif decodes a HEIC cut in half without complaint (missing tiles come out grey), so a
    truncated upload would pass as a photo; the box sizes tell us the file is incomplete.
    """
    offset = 0
    while offset < len(data):
        if offset + 8 > len(data):
            return f"box header at byte {offset} cut short"
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            if offset + 16 > len(data):
                return f"box {kind!r} header cut short"
            (size,) = struct.unpack(">Q", data[offset + 8 : offset + 16])
        elif size == 0:
            return None  # "extends to end of file": complete by definition
        if size < 8 or offset + size > len(data):
            return f"box {kind!r} at byte {offset} needs {size} bytes, {len(data) - offset} present"
        offset += size
    return None


@functools.cache
def enable_heif() -> None:
    # Registering is global and loads libheif, so do it on first use, not at import.
    pillow_heif.register_heif_opener()


def open_image(data: bytes, *, max_pixels: int) -> ImageFile.ImageFile:
    """Open the header only (no pixels decoded) and refuse unsupported or oversized images."""
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    if not data:
        raise UnreadableImage("empty", "the upload has no bytes")
    enable_heif()
    try:
        image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise UnreadableImage("too_many_pixels", str(exc)) from exc
    except UnidentifiedImageError as exc:
        if sniff_format(data) is not None:
            raise UnreadableImage("corrupt", f"{sniff_format(data)} signature but unreadable header") from exc
        raise UnreadableImage(
            "unsupported_format", f"not a JPEG, PNG, WebP or HEIC image (first bytes {data[:12].hex()})"
        ) from exc
    except _DECODER_ERRORS as exc:
        raise UnreadableImage("corrupt", f"header unreadable: {type(exc).__name__}: {exc}") from exc
    if image.format == "HEIF" and (problem := _truncated_box(data)) is not None:
        image.close()
        raise UnreadableImage("corrupt", f"truncated HEIF: {problem}")
    width, height = image.size
    if width <= 0 or height <= 0:
        raise UnreadableImage("corrupt", f"header claims a {width}x{height} image")
    if width * height > max_pixels:
        image.close()
        raise UnreadableImage(
            "too_many_pixels", f"{width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}"
        )
    return image


def decode_image(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Decode `data` to an upright RGB image, or raise `UnreadableImage` saying why not.

    The pixel count is checked from the header before any pixel is decoded. Callers should keep
    `max_pixels` at or below `PIL.Image.MAX_IMAGE_PIXELS`, above which Pillow itself warns.
    """
    image = open_image(data, max_pixels=max_pixels)
    source_format = str(image.format)
    orientation_problem = None
    try:
        try:
            image.load()
        except _DECODER_ERRORS as exc:
            raise UnreadableImage("corrupt", f"pixels undecodable: {type(exc).__name__}: {exc}") from exc
        try:
            upright: Image.Image = ImageOps.exif_transpose(image)
        except _DECODER_ERRORS as exc:
            # Broken EXIF must never cost us a photo whose pixels are intact: keep it as stored, and say so.
            upright = image
            orientation_problem = f"orientation not applied, EXIF unreadable: {type(exc).__name__}: {exc}"
        if upright.mode == "P":
            # Straight P -> RGB warns about palette transparency; going through RGBA does not.
            upright = upright.convert("RGBA")
        # exif_transpose hands back a new image (a copy when there is nothing to turn); converting an RGB one
        # again would copy every pixel once more (20-80 MB for a phone photo). `image` itself is closed below.
        rgb = upright if upright.mode == "RGB" and upright is not image else upright.convert("RGB")
    except _DECODER_ERRORS as exc:
        raise UnreadableImage("corrupt", f"pixels unconvertible: {type(exc).__name__}: {exc}") from exc
    finally:
        image.close()
    return DecodedImage(image=rgb, format=source_format, width=rgb.width, height=rgb.height,
                        orientation_problem=orientation_problem)
