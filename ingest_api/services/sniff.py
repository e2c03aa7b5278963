"""Decide what an uploaded file really is from its bytes, never from its name or declared type.

Only the header is parsed (Pillow reads dimensions without decoding pixels), so a decompression bomb is refused
before it costs memory.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache
from typing import IO

import pillow_heif
from PIL import Image, UnidentifiedImageError

ACCEPTED = "JPEG, PNG, HEIC/HEIF or WebP"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif"}


class RejectedUpload(Exception):
    """The upload is not something we store; `code` is stable for clients, the message is for people."""

    def __init__(self, code: str, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass(frozen=True)
class SniffedImage:
    media_type: str
    width: int
    height: int


def media_type_from_magic(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "image/heic" if head[8:12] != b"avif" else None
    return None


@cache
def enable_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (iPhone photos); once per process, on first use rather than at import."""
    pillow_heif.register_heif_opener()


def sniff_image(stream: IO[bytes], *, max_pixels: int) -> SniffedImage:
    """Identify the image in `stream` and check its size; raises RejectedUpload with a specific code."""
    stream.seek(0)
    head = stream.read(32)
    if not head:
        raise RejectedUpload("empty_body", "the upload is empty", status=400)
    media_type = media_type_from_magic(head)
    if media_type is None:
        raise RejectedUpload("unsupported_type", f"the file is not a {ACCEPTED} image (checked its first bytes)")
    if media_type == "image/heic":
        enable_heif()
    stream.seek(0)
    try:
        with warnings.catch_warnings():
            # We enforce our own pixel limit below; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns about damaged EXIF or MPO segments; they do not make the photo unreadable (extraction
            # records them), and only the header's dimensions matter here.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(stream) as image:
                width, height = image.size
    except Image.DecompressionBombError as error:
        raise RejectedUpload("too_many_pixels", f"image has too many pixels: {error}", status=413) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise RejectedUpload(
            "unreadable_image", f"the {media_type} header could not be read (truncated or corrupt): {error}", 422
        ) from error
    finally:
        stream.seek(0)
    if width <= 0 or height <= 0:
        raise RejectedUpload("unreadable_image", f"image claims impossible dimensions {width}x{height}", 422)
    if width * height > max_pixels:
        raise RejectedUpload(
            "too_many_pixels", f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}", 413
        )
    return SniffedImage(media_type, width, height)
