"""Dominant colour name of a vehicle crop, for structured search ("black car", "red van").

Each pixel of the crop's central part gets a colour name from fixed HSV rules; the name with the most
(weighted) pixels wins. Pure functions over (H, W, 3) uint8 RGB arrays.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

COLOUR_NAMES = (
    "black",
    "grey",
    "silver",
    "white",
    "red",
    "orange",
    "brown",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
)
ACHROMATIC = frozenset({"black", "grey", "silver", "white"})
# Glass, tyres, shadows and road are grey or black on every car, so a painted colour that covers
# fewer pixels is still the more likely answer: chromatic pixels count this many times.
CHROMATIC_WEIGHT = 2.0
# Background at the crop edges (road, other cars) dilutes the body colour: keep the central part.
CENTRE_FRACTION = 0.6


def pixel_colour_labels(rgb: NDArray[np.uint8]) -> NDArray[np.int64]:
    """Index into COLOUR_NAMES for every pixel of an (H, W, 3) uint8 RGB image; returns (H, W) int64."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV).astype(np.int64)
    hue, sat, val = hsv[..., 0] * 2, hsv[..., 1], hsv[..., 2]  # hue in degrees 0..358
    names = np.full(hue.shape, COLOUR_NAMES.index("grey"), dtype=np.int64)

    def put(mask: NDArray[np.bool_], name: str) -> None:
        names[mask] = COLOUR_NAMES.index(name)

    chroma = (sat >= 60) & (val >= 50)
    put(~chroma & (val >= 120) & (val < 190), "silver")
    put(~chroma & (val >= 190), "white")
    put(~chroma & (val < 50), "black")
    put(chroma & ((hue < 15) | (hue >= 345)), "red")
    put(chroma & (hue >= 15) & (hue < 40) & (val >= 150), "orange")
    put(chroma & (hue >= 15) & (hue < 45) & (val < 150), "brown")
    put(chroma & (hue >= 40) & (hue < 70) & (val >= 150), "yellow")
    put(chroma & (hue >= 70) & (hue < 165), "green")
    put(chroma & (hue >= 165) & (hue < 260), "blue")
    put(chroma & (hue >= 260) & (hue < 300), "purple")
    put(chroma & (hue >= 300) & (hue < 345), "pink")
    # Dark olive tones (yellow hue, low value) read as brown/green rather than yellow.
    put(chroma & (hue >= 45) & (hue < 70) & (val < 150), "green")
    return names


def centre_crop(rgb: NDArray[np.uint8], fraction: float = CENTRE_FRACTION) -> NDArray[np.uint8]:
    height, width = rgb.shape[:2]
    dy, dx = int(height * (1 - fraction) / 2), int(width * (1 - fraction) / 2)
    inner = rgb[dy : height - dy, dx : width - dx]
    return inner if inner.size else rgb


def dominant_colour(rgb: NDArray[np.uint8]) -> tuple[str, float]:
    """Colour name of an (H, W, 3) uint8 RGB crop and the share (0..1) of centre pixels that carry it."""
    if rgb.size == 0:
        raise ValueError("cannot name the colour of an empty crop")
    labels = pixel_colour_labels(centre_crop(rgb)).ravel()
    counts = np.bincount(labels, minlength=len(COLOUR_NAMES)).astype(np.float64)
    weights = np.array([1.0 if n in ACHROMATIC else CHROMATIC_WEIGHT for n in COLOUR_NAMES])
    best = int(np.argmax(counts * weights))
    return COLOUR_NAMES[best], float(counts[best] / labels.size)
