"""The small interface every model family implements, and the detection record it returns.

A family wraps one or more model files: `detect(image)` finds things in an RGB photo, `embed(image,
detections)` turns them into L2-normalised float32 vectors for the FAISS indexers. `version` names the
weights by sha256 prefix so every record says exactly which model produced it.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

DetectionKind = Literal["face", "vehicle", "person", "plate"]
AttributeValue = str | float | int | bool
RGBImage = NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    """Axis-aligned box in pixels of the image given to `detect` (top-left x, y, width, height)."""

    x: float
    y: float
    w: float
    h: float

    def clipped(self, width: int, height: int) -> Box:
        x0, y0 = max(0.0, self.x), max(0.0, self.y)
        x1, y1 = min(float(width), self.x + self.w), min(float(height), self.y + self.h)
        return Box(x0, y0, max(0.0, x1 - x0), max(0.0, y1 - y0))

    def as_int_slices(self) -> tuple[slice, slice]:
        """Row and column slices for cropping a NumPy image (the box is assumed clipped)."""
        x0, y0 = int(round(self.x)), int(round(self.y))
        return slice(y0, int(round(self.y + self.h))), slice(x0, int(round(self.x + self.w)))


@dataclass(frozen=True)
class Detection:
    """One thing found in a photo.

    `score` is the detector's confidence; `quality` (0..1) says how usable the region is for
    identification (faces: size and sharpness; others: the score). `attributes` holds the class name,
    colour, plate text and quality flags, e.g. `low_quality=True` tells the indexer to keep it out.
    """

    kind: DetectionKind
    box: Box
    score: float
    quality: float
    landmarks: tuple[tuple[float, float], ...] | None = None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)

    @property
    def indexable(self) -> bool:
        return not bool(self.attributes.get("low_quality", False))


@runtime_checkable
class ModelFamily(Protocol):
    """What the extraction job needs from a model family (see `registry.create`)."""

    name: str
    embedding_dim: int

    @property
    def version(self) -> str:
        """Model name plus the sha256 prefix of each weight file, e.g. `yolox-nano@615e266100c3`."""
        ...

    def load(self) -> None:
        """Open the model sessions; idempotent. Called once per worker process."""
        ...

    def detect(self, image: RGBImage) -> list[Detection]:
        """Detections in an (H, W, 3) uint8 RGB image."""
        ...

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        """(n, embedding_dim) float32, each row L2-normalised, in the order of `detections`."""
        ...


class ModelNotInstalledError(FileNotFoundError):
    """A weight file is missing; the message says which command installs it."""


class ModelIntegrityError(RuntimeError):
    """A weight file's sha256 does not match the pinned digest."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_weight(path: Path, expected_sha256: str, install_hint: str) -> Path:
    """Return `path` after checking it exists and matches its pinned digest."""
    if not path.is_file():
        raise ModelNotInstalledError(f"model file {path} not found; {install_hint}")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ModelIntegrityError(f"model file {path} has sha256 {actual}, expected {expected_sha256}")
    return path


def require_rgb(image: RGBImage) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )


def package_dir(name: str, install_hint: str) -> Path:
    """Folder of an installed top-level package, found without importing (running) its code."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(f"package {name!r} is not installed; {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))
