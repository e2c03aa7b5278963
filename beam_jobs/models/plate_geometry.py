"""Pure geometry for plate localisation: text-line quads from the OCR detector -> plate candidate crops.

Quads are (4, 2) float32 arrays of corner points (top-left, top-right, bottom-right, bottom-left) in
pixels of the full photo. The functions here pick plate-shaped lines, merge a plate split into pieces
on one line (`WSQ` + `3021`, or the two halves either side of a state emblem), and cut a rectified,
upscaled crop from the full-resolution photo for the recogniser. No model and no I/O here.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box

Quad = NDArray[np.float32]

# A plate's text line is wider than tall (one row: ~2-8x; the extremes allow a tilt or a tight box)
# and not a hairline. Two-row plates are read row by row and merged by the caller.
MIN_ASPECT = 1.3
MAX_ASPECT = 12.0
MIN_HEIGHT_PX = 7.0
# Pieces of one line: similar height, overlapping rows, side by side (not stacked: a state name above
# the number overlaps it in x), gap under ~1.2 character heights.
MERGE_MAX_GAP = 1.2
MERGE_MIN_GAP = -0.3
MERGE_MIN_ROW_OVERLAP = 0.6
MERGE_MAX_HEIGHT_RATIO = 1.6


def quad_size(quad: Quad) -> tuple[float, float]:
    """(width, height) of a quad: its longest top/bottom edge and longest left/right edge."""
    q = np.asarray(quad, dtype=np.float32)
    width = max(float(np.linalg.norm(q[0] - q[1])), float(np.linalg.norm(q[3] - q[2])))
    height = max(float(np.linalg.norm(q[0] - q[3])), float(np.linalg.norm(q[1] - q[2])))
    return width, height


def quad_to_box(quad: Quad) -> Box:
    """Axis-aligned box around a quad."""
    q = np.asarray(quad, dtype=np.float32).reshape(-1, 2)
    x0, y0 = q.min(axis=0)
    x1, y1 = q.max(axis=0)
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def box_to_quad(box: Box) -> Quad:
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def is_plate_shaped(quad: Quad) -> bool:
    """Whether a text line has the proportions of (one row of) a plate."""
    width, height = quad_size(quad)
    return height >= MIN_HEIGHT_PX and MIN_ASPECT <= width / max(height, 1e-6) <= MAX_ASPECT


def _same_line(a: Box, b: Box) -> bool:
    """b lies right of a on the same text row, close enough to be one plate."""
    if b.x < a.x:
        a, b = b, a
    h_lo, h_hi = sorted((a.h, b.h))
    if h_hi > MERGE_MAX_HEIGHT_RATIO * h_lo:
        return False
    overlap = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    gap = b.x - (a.x + a.w)
    mean_h = (a.h + b.h) / 2
    return overlap >= MERGE_MIN_ROW_OVERLAP * h_lo and MERGE_MIN_GAP * mean_h <= gap <= MERGE_MAX_GAP * mean_h


def merge_line_pieces(quads: Sequence[Quad]) -> list[Quad]:
    """Quads of pieces on one row, close together -> one quad around them (others pass unchanged).

    Returned in reading order (top to bottom, left to right); merged quads are axis-aligned rectangles,
    which is enough for the near-frontal plates witnesses photograph.
    """
    boxes = [quad_to_box(q) for q in quads]
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i].y, boxes[i].x))
    groups: list[list[int]] = []
    for i in order:
        for group in groups:
            if any(_same_line(boxes[j], boxes[i]) for j in group):
                group.append(i)
                break
        else:
            groups.append([i])
    merged: list[Quad] = []
    for group in groups:
        if len(group) == 1:
            merged.append(np.asarray(quads[group[0]], dtype=np.float32))
            continue
        x0 = min(boxes[j].x for j in group)
        y0 = min(boxes[j].y for j in group)
        x1 = max(boxes[j].x + boxes[j].w for j in group)
        y1 = max(boxes[j].y + boxes[j].h for j in group)
        merged.append(box_to_quad(Box(x0, y0, x1 - x0, y1 - y0)))
    return merged


def lower_part_share(box: Box, vehicle: Box) -> float:
    """How far down the vehicle box the plate's centre sits: 0 top edge .. 1 bottom edge."""
    return (box.y + box.h / 2 - vehicle.y) / max(vehicle.h, 1e-6)


def inside(box: Box, outer: Box) -> bool:
    """Whether the centre of `box` lies inside `outer`."""
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    return outer.x <= cx <= outer.x + outer.w and outer.y <= cy <= outer.y + outer.h


def covered_share(box: Box, others: Sequence[Box]) -> float:
    """Share of `box`'s area inside the most-overlapping box of `others` (0 when none)."""
    area = box.w * box.h
    if area <= 0:
        return 1.0
    best = 0.0
    for other in others:
        w = min(box.x + box.w, other.x + other.w) - max(box.x, other.x)
        h = min(box.y + box.h, other.y + other.h) - max(box.y, other.y)
        best = max(best, max(0.0, w) * max(0.0, h) / area)
    return best


def rectified_crop(
    image: NDArray[np.uint8], quad: Quad, *, pad: float = 0.1, min_height: int = 48
) -> NDArray[np.uint8]:
    """The quad cut out of the full-resolution image, deskewed, padded and upscaled.

    `pad` widens the quad by that share of its height on every side (a tight detector box clips the
    first and last characters); crops lower than `min_height` (the recogniser's input height) are
    upscaled with bicubic interpolation so small plates keep their strokes.
    """
    q = np.asarray(quad, dtype=np.float32)
    width, height = quad_size(q)
    x_axis = (q[1] - q[0]) / max(float(np.linalg.norm(q[1] - q[0])), 1e-6)
    y_axis = (q[3] - q[0]) / max(float(np.linalg.norm(q[3] - q[0])), 1e-6)
    centre = q.mean(axis=0)
    out_w, out_h = width + 2 * pad * height, height + 2 * pad * height
    half_x, half_y = x_axis * out_w / 2, y_axis * out_h / 2
    source = np.array(
        [centre - half_x - half_y, centre + half_x - half_y, centre + half_x + half_y, centre - half_x + half_y],
        dtype=np.float32,
    )
    scale = max(1.0, min_height / max(out_h, 1e-6))
    size = (max(1, int(round(out_w * scale))), max(1, int(round(out_h * scale))))
    target = np.array([[0, 0], [size[0], 0], [size[0], size[1]], [0, size[1]]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    crop = cv2.warpPerspective(image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(crop, dtype=np.uint8)


def resize_max_side(image: NDArray[np.uint8], max_side: int) -> tuple[NDArray[np.uint8], float]:
    """Resize so the longer side is `max_side` (down or up); returns the image and the scale used."""
    scale = max_side / max(image.shape[:2])
    if abs(scale - 1.0) < 1e-3:
        return image, 1.0
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interpolation)
    return np.asarray(resized, dtype=np.uint8), scale
