"""A real face family that raises on one known photo, injected into the job through `registry.FAMILIES`.

    monkeypatch.setitem(registry.FAMILIES, "faces", POISONED_FACES)

DirectRunner runs the DoFns in the test's process, so the patched registry entry is what `acquire_families`
loads. Every other photo goes through the real YuNet + SFace models, so their detections are real.
"""

from __future__ import annotations

import io
import random

import cv2
from PIL import Image

from beam_jobs.models.base import Detection, RGBImage
from beam_jobs.models.faces import FaceFamily

POISON_SIZE = (97, 61)  # (width, height) of `poison_jpeg()`; no photo in ../shared/data has it
FACES_POISON_SIZE = (720, 509)  # of `resized_jpeg(...)`: a real photo with faces the family raises on
STRIP_SIZE = (4000, 1)  # a 1-pixel-high panorama: it crashed the real face family once (cv2.resize assertion)


def poison_jpeg(seed: int = 7) -> bytes:
    """A valid, EXIF-free JPEG of `POISON_SIZE` seeded noise: the photo the poisoned family raises on."""
    return _noise_jpeg(POISON_SIZE, seed)


def strip_jpeg(seed: int = 8) -> bytes:
    """A valid JPEG of `STRIP_SIZE`: degenerate, but a photo the job must keep."""
    return _noise_jpeg(STRIP_SIZE, seed)


def resized_jpeg(data: bytes, size: tuple[int, int] = FACES_POISON_SIZE) -> bytes:
    """`data` (a real photo) resized to `size`: faces the real family finds, at a size the poisoned one refuses."""
    image = Image.open(io.BytesIO(data)).convert("RGB").resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _noise_jpeg(size: tuple[int, int], seed: int) -> bytes:
    width, height = size
    image = Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


class PoisonedFaces(FaceFamily):
    """`FaceFamily`, except that `detect` raises `cv2.error` on a photo of `POISON_SIZE` or `FACES_POISON_SIZE`."""

    def detect(self, image: RGBImage) -> list[Detection]:
        width, height = image.shape[1], image.shape[0]
        if (width, height) in (POISON_SIZE, FACES_POISON_SIZE):
            raise cv2.error(f"injected: this family cannot read a {width}x{height} photo")
        return super().detect(image)


POISONED_FACES = f"{PoisonedFaces.__module__}:{PoisonedFaces.__qualname__}"
