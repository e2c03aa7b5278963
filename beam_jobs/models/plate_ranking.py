"""Recognised text lines -> ranked plate detections, one per plate (pure: no model, no I/O).

A read becomes a `plate` detection when it looks like a plate (`plate_text.is_plate_like`); it keeps the
raw read, the plate text (letter/digit confusions undone where a known national format decides it, see
`plate_formats`), a confusable-folded search key and the recogniser's confidence. Reads inside a vehicle
box, in its lower part, and reads that fit a known format rank first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection
from beam_jobs.models.plate_formats import fit_to_format
from beam_jobs.models.plate_geometry import inside, lower_part_share, quad_to_box
from beam_jobs.models.plate_text import is_plate_like, normalise_plate, search_key

# A read that fits no known format, or lies outside every vehicle / in a vehicle's upper part
# (stickers, dealer frames, windscreen text), is kept but ranked after the likely plates.
NO_FORMAT_WEIGHT = 0.85
OUTSIDE_VEHICLE_WEIGHT = 0.8
UPPER_PART_WEIGHT = 0.9
SAME_PLATE_IOU = 0.3


@dataclass(frozen=True)
class PlateRead:
    """One recognised text line: where it is, what was read, how sure the recogniser was, and which
    recogniser read it (package, version, model and weight digest; None where the caller does not say)."""

    box: Box
    raw: str
    confidence: float
    recogniser: str | None = None


def polygon_to_box(points: list[list[float]] | NDArray[np.float32]) -> Box:
    """Axis-aligned box around an OCR quadrilateral (4 points x, y)."""
    return quad_to_box(np.asarray(points, dtype=np.float32))


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 when either is empty)."""
    w = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    union = a.w * a.h + b.w * b.h - w * h
    return w * h / union if union > 0 else 0.0


def fits_plate(read: PlateRead) -> bool:
    """Whether a read looks like a plate and fits a known national format (after one confusable flip)."""
    return is_plate_like(read.raw) and fit_to_format(read.raw)[1]


def rank_weight(box: Box, fits: bool, vehicles: Sequence[Box] | None) -> tuple[float, bool | None]:
    """Ranking weight of a read and whether it lies in a vehicle (None when no vehicles were given)."""
    weight = 1.0 if fits else NO_FORMAT_WEIGHT
    if vehicles is None:
        return weight, None
    holders = [v for v in vehicles if inside(box, v)]
    if not holders:
        return weight * OUTSIDE_VEHICLE_WEIGHT, False
    if max(lower_part_share(box, v) for v in holders) < 0.5:
        weight *= UPPER_PART_WEIGHT
    return weight, True


def plate_detections(
    reads: Sequence[PlateRead] | Sequence[tuple[Any, str, float]],
    min_confidence: float,
    vehicles: Sequence[Box] | None = None,
) -> list[Detection]:
    """Recognised lines -> plate detections, best first, one per plate.

    Accepts `PlateRead`s or RapidOCR's `(quad, text, confidence)` lines. `score` is the recogniser's
    confidence times the ranking weight (`rank_weight`); `plate_confidence` keeps the bare confidence.
    """
    plates: list[Detection] = []
    for read in reads:
        if not isinstance(read, PlateRead):
            quad, raw_text, conf = read
            read = PlateRead(polygon_to_box(quad), str(raw_text), float(conf))
        if read.confidence < min_confidence or not is_plate_like(read.raw):
            continue
        text, fits = fit_to_format(read.raw)
        weight, in_vehicle = rank_weight(read.box, fits, vehicles)
        attributes: dict[str, str | float | int | bool] = {
            "class": "plate",
            "plate_raw": read.raw,
            "plate_read": normalise_plate(read.raw),
            "plate_text": text,
            "plate_key": search_key(text),
            "plate_confidence": round(read.confidence, 4),
            "plate_format_known": fits,
        }
        if in_vehicle is not None:
            attributes["in_vehicle"] = in_vehicle
        if read.recogniser is not None:
            attributes["plate_recogniser"] = read.recogniser
        score = read.confidence * weight
        plates.append(Detection(kind="plate", box=read.box, score=score, quality=score, attributes=attributes))
    plates.sort(key=lambda d: -d.score)
    kept: list[Detection] = []
    for det in plates:  # one record per plate: the same text twice, or overlapping reads, keep the best
        if any(k.attributes["plate_text"] == det.attributes["plate_text"] or iou(k.box, det.box) > SAME_PLATE_IOU
               for k in kept):
            continue
        kept.append(det)
    return kept
