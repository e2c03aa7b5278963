"""Query images -> embeddings, with the same model families the extraction job used to build the indexes.

    QueryEmbedder().embed("face", jpeg_bytes)   # (n, 128) float32, one row per face found

Models load on the first image query, not at startup (most searches are by plate, attribute or detection
id, and the API restarts in tests and deployments should stay quick). OpenCV's face detector keeps
per-call state, so each family is used by one thread at a time.
A tight crop (the investigator cut out one face or one car) often leaves the detector nothing to find:
faces are retried on the crop padded with a grey border, vehicles and persons fall back to the whole
image as the box, which is what the extraction job's crop would have been.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import numpy as np
from numpy.typing import NDArray

from beam_jobs.extraction.decode import UnreadableImage, decode_image
from beam_jobs.models import registry
from beam_jobs.models.base import Box, Detection, DetectionKind, ModelFamily, RGBImage

FAMILY_OF = {"face": "faces", "vehicle": "objects", "person": "objects"}
#: Query images are photos or crops an investigator uploads; 50 MP is more than any phone takes.
DEFAULT_MAX_PIXELS = 50_000_000


class UnusableQueryImage(ValueError):
    """The uploaded query image cannot be decoded or searched with; the message says why."""


class QueryEmbedder:
    def __init__(self, *, models_dir: Path | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.models_dir = models_dir
        self.max_pixels = max_pixels
        self._families: dict[str, tuple[ModelFamily, threading.Lock]] = {}
        self._create_lock = threading.Lock()

    def _family(self, name: str) -> tuple[ModelFamily, threading.Lock]:
        with self._create_lock:
            if name not in self._families:
                options = {"models_dir": self.models_dir} if name == "objects" and self.models_dir else {}
                family = registry.create(name, **options)
                family.load()
                self._families[name] = (family, threading.Lock())
            return self._families[name]

    def embed(self, kind: str, data: bytes) -> NDArray[np.float32]:
        """`(n, d) float32` L2-normalised: one row per `kind` detection in the image (n may be 0)."""
        if kind not in FAMILY_OF:
            raise UnusableQueryImage(f"cannot search {kind!r} by image; kinds: {', '.join(sorted(FAMILY_OF))}")
        try:
            image: RGBImage = np.asarray(decode_image(data, max_pixels=self.max_pixels).image)
        except UnreadableImage as error:
            raise UnusableQueryImage(f"query image unreadable ({error.reason}): {error.detail}") from error
        family, lock = self._family(FAMILY_OF[kind])
        with lock:
            found = [d for d in family.detect(image) if d.kind == kind]
            if not found and kind == "face":
                image = _pad(image)
                found = [d for d in family.detect(image) if d.kind == kind]
            if not found and kind != "face":
                whole = Box(0, 0, image.shape[1], image.shape[0])
                found = [Detection(kind=cast(DetectionKind, kind), box=whole, score=1.0, quality=1.0)]
            vectors = family.embed(image, found) if found else np.empty((0, family.embedding_dim), np.float32)
        usable = np.linalg.norm(vectors, axis=1) > 0.5  # the extraction job drops empty vectors the same way
        return np.ascontiguousarray(vectors[usable], dtype=np.float32)


def _pad(image: RGBImage, fraction: float = 0.5) -> RGBImage:
    """The image centred on a grey canvas `fraction` larger on every side."""
    height, width = image.shape[:2]
    dy, dx = int(height * fraction), int(width * fraction)
    canvas = np.full((height + 2 * dy, width + 2 * dx, 3), 127, dtype=np.uint8)
    canvas[dy:dy + height, dx:dx + width] = image
    return canvas
