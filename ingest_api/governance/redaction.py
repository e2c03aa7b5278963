"""Redact bystanders before a photo leaves the system: pixelate faces and plates that are not the case's subject,
and re-encode as a JPEG that carries no EXIF (no GPS, device serials, capture time or thumbnail).

    blur, keep = bystander_regions(detections_of_the_photo, subject_ids)
    jpeg = redact_photo(original_bytes, blur, keep=keep, max_pixels=...)

Regions are in pixels of the upright image (EXIF orientation applied), the frame the extraction job's detections
use. Each region is grown by a margin (detector boxes are tight: hair, ears and plate frames identify too), then
reduced to a few cells across and blurred: irreversible, unlike a light Gaussian blur that deblurring can undo.
A subject's box is left as decoded, except where a bystander's own (ungrown) box lies inside it: the margins give
way to the evidence, a bystander's face or plate never does.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from beam_jobs.extraction.decode import decode_image


@dataclass(frozen=True)
class Region:
    """Axis-aligned box: top-left x, y, width, height, in pixels of the upright image."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Detected:
    """A detection of one photo, as redaction needs it (kind: face, plate, vehicle, person...)."""

    detection_id: str
    kind: str
    region: Region


REDACTED_KINDS = frozenset({"face", "plate"})


def share_inside(inner: Region, outer: Region) -> float:
    """Fraction of `inner`'s area that lies inside `outer` (0 for an empty `inner`)."""
    width = min(inner.x + inner.w, outer.x + outer.w) - max(inner.x, outer.x)
    height = min(inner.y + inner.h, outer.y + outer.h) - max(inner.y, outer.y)
    area = inner.w * inner.h
    return max(0.0, width) * max(0.0, height) / area if area > 0 else 0.0


def bystander_regions(detections: Sequence[Detected], subject_ids: Collection[str], *, inside: float = 0.8
                      ) -> tuple[list[Region], list[Region]]:
    """(to pixelate, to keep) for one photo: every face and plate is pixelated unless it is a subject or a plate
    lying (at least `inside` of its area) within a subject vehicle; subjects' boxes are kept."""
    subjects = [d for d in detections if d.detection_id in subject_ids]
    vehicles = [d.region for d in subjects if d.kind == "vehicle"]
    blur = [d.region for d in detections
            if d.kind in REDACTED_KINDS and d.detection_id not in subject_ids
            and not (d.kind == "plate" and any(share_inside(d.region, v) >= inside for v in vehicles))]
    return blur, [d.region for d in subjects]


def grown_box(region: Region, width: int, height: int, margin: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the region grown by `margin` of its size on each side and clipped; None if empty."""
    if region.w < 0 or region.h < 0:
        raise ValueError(f"region has a negative size: {region}")
    dx, dy = region.w * margin, region.h * margin
    x0, y0 = max(0, int(np.floor(region.x - dx))), max(0, int(np.floor(region.y - dy)))
    x1 = min(width, int(np.ceil(region.x + region.w + dx)))
    y1 = min(height, int(np.ceil(region.y + region.h + dy)))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def pixelate_regions(
    pixels: NDArray[np.uint8], regions: Sequence[Region], *, keep: Sequence[Region] = (), margin: float = 0.15,
    cells: int = 5,
) -> NDArray[np.uint8]:
    """A copy of `pixels` ((h, w, 3) uint8) with each grown region reduced to ~`cells` cells across and blurred.

    Pixels outside every grown region are left exactly as they were, and so are pixels inside a `keep` box that
    no region's own (ungrown) box covers.
    """
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(f"expected an (h, w, 3) uint8 image, got {pixels.shape} {pixels.dtype}")
    out = pixels.copy()
    height, width = pixels.shape[:2]
    for region in regions:
        box = grown_box(region, width, height, margin)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        patch = out[y0:y1, x0:x1]
        short = min(patch.shape[0], patch.shape[1])
        across = (max(1, round(cells * patch.shape[1] / short)), max(1, round(cells * patch.shape[0] / short)))
        small = cv2.resize(patch, across, interpolation=cv2.INTER_AREA)
        mosaic = cv2.resize(small, (patch.shape[1], patch.shape[0]), interpolation=cv2.INTER_NEAREST)
        kernel = max(3, (short // cells) | 1)  # odd, about one cell: softens the cell edges, which also identify
        out[y0:y1, x0:x1] = cv2.GaussianBlur(mosaic, (kernel, kernel), 0)
    if keep:
        restore = _mask(keep, width, height) & ~_mask(regions, width, height)
        out[restore] = pixels[restore]
    return out


def _mask(regions: Sequence[Region], width: int, height: int) -> NDArray[np.bool_]:
    mask = np.zeros((height, width), dtype=bool)
    for region in regions:
        box = grown_box(region, width, height, 0.0)
        if box is not None:
            x0, y0, x1, y1 = box
            mask[y0:y1, x0:x1] = True
    return mask


def encode_jpeg(rgb: NDArray[np.uint8], quality: int = 90) -> bytes:
    """Encode an (h, w, 3) RGB image as a baseline JPEG with no metadata segments besides JFIF."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as JPEG")
    return bytes(encoded.tobytes())


def redact_photo(
    data: bytes, regions: Sequence[Region], *, max_pixels: int, keep: Sequence[Region] = (), quality: int = 90,
    margin: float = 0.15,
) -> bytes:
    """Decode an upload (upright, bombs refused), pixelate `regions` but not `keep`, return an EXIF-free JPEG."""
    decoded = decode_image(data, max_pixels=max_pixels)
    rgb: NDArray[np.uint8] = np.asarray(decoded.image, dtype=np.uint8)
    return encode_jpeg(pixelate_regions(rgb, regions, keep=keep, margin=margin), quality)
