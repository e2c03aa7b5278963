"""Fixtures shared by the model tests: the real photos of ../shared/data as RGB arrays."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageOps

Loader = Callable[[str], NDArray[np.uint8]]


@pytest.fixture(scope="module")
def load_rgb(shared_data: Path) -> Loader:
    """Read a shared photo (path relative to shared/data) as (H, W, 3) uint8 RGB, EXIF-rotated."""

    def load(name: str) -> NDArray[np.uint8]:
        with Image.open(shared_data / name) as image:
            return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))

    return load
