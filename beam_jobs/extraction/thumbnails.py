"""Small JPEG previews that carry pixels only: no EXIF, GPS, XMP, ICC or comments."""

from __future__ import annotations

from io import BytesIO

from PIL import Image

DEFAULT_MAX_SIDE = 512


def make_thumbnail(image: Image.Image, *, max_side: int = DEFAULT_MAX_SIDE, quality: int = 85) -> bytes:
    """JPEG bytes of `image` scaled to fit `max_side` x `max_side` (never enlarged).

    Metadata is dropped by building a fresh image from the pixels: Pillow copies `info`
    (EXIF, XMP, ICC) along with an image, and a thumbnail must not leak where a witness stood.
    """
    if max_side <= 0:
        raise ValueError(f"max_side must be positive, got {max_side}")
    pixels = image.convert("RGB")
    pixels.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    clean = Image.frombytes("RGB", pixels.size, pixels.tobytes())
    out = BytesIO()
    clean.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()
