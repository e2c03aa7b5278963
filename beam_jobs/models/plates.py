"""Plate family: find and read licence plates with RapidOCR (PP-OCRv4 ONNX inside `rapidocr-onnxruntime`).

Two steps, each on the resolution that suits it:

1. Localise: RapidOCR's text detector runs on each vehicle box the caller passes (`detect(image,
   vehicles=...)`), or on the whole photo, resized so its longer side is `det_max_side` (640: all plates
   of the test photos found, a third of the cost of the library's 736-px-short-side default). Text
   lines with a plate's proportions are kept, pieces of one row are merged (`plate_geometry`).
2. Read: each candidate is cut from the FULL-resolution photo, deskewed, padded and upscaled to the
   recogniser's 48-px height, and the recogniser alone reads the batch of crops (no text detection
   or angle classifier on the crop: on a whole plate they split and reorder the text).

Reads that look like plates (`plate_text.is_plate_like`) become `plate` detections with the raw read,
the plate text (letter/digit confusions undone where a known national format decides it, see
`plate_formats`), a confusable-folded search key and the recogniser's confidence. Reads inside a
vehicle box, in its lower part, and reads that fit a known format rank first.
Plates carry no embedding: they are searched by text, so `embed` returns (n, 0).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection, RGBImage, package_dir, require_rgb, sha256_file
from beam_jobs.models.plate_formats import fit_to_format
from beam_jobs.models.plate_geometry import (
    Quad,
    inside,
    is_plate_shaped,
    lower_part_share,
    merge_line_pieces,
    quad_to_box,
    rectified_crop,
    resize_max_side,
)
from beam_jobs.models.plate_text import is_plate_like, normalise_plate, search_key
from beam_jobs.models.transforms import rgb_to_bgr

OCR_MODEL_FILES = ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx")
MAX_CANDIDATES = 5
# One plate row is 2-7 times wider than tall: such lines are read first, other shapes only if room is left.
PLATE_ROW_ASPECT = (1.8, 7.0)
# Vehicle boxes from the object detector are often tight: widen them so a bumper plate is not cut.
VEHICLE_MARGIN = 0.05
VEHICLE_TOP_SKIP = 0.4
MAX_VEHICLES = 3
MAX_REGION_UPSCALE = 1.5
# Ranking: a read that fits no known format, or lies outside every vehicle / in a vehicle's upper
# part (stickers, dealer frames, windscreen text), is kept but ranked after the likely plates.
NO_FORMAT_WEIGHT = 0.85
OUTSIDE_VEHICLE_WEIGHT = 0.8
UPPER_PART_WEIGHT = 0.9
SAME_PLATE_IOU = 0.3
# Refinement: a line found on a downscaled photo with fewer than this many pixels of height (in the
# detector's image) gets a second, local detection on an upscaled patch around it, so the crop hugs
# the characters (a coarse box clips the first/last character or takes in the plate frame's text).
REFINE_BELOW_DET_PX = 24.0
REFINE_PATCH_SIDE = 320
MAX_REFINED = 4
# The recogniser pads every crop to at least this width (48 px high). 320 is PP-OCR's training shape and
# RapidOCR's default; a narrower pad is cheaper (192: -16 % CPU per photo, measured) but reads differ:
# on the 22 real photos it kept 20/22 with vehicle boxes and lost one whole-photo read (bench/models.py).
REC_MIN_WIDTH = 320


def polygon_to_box(points: list[list[float]] | NDArray[np.float32]) -> Box:
    """Axis-aligned box around an OCR quadrilateral (4 points x, y)."""
    return quad_to_box(np.asarray(points, dtype=np.float32))


@dataclass(frozen=True)
class PlateRead:
    """One recognised text line: where it is, what was read, and how sure the recogniser was."""

    box: Box
    raw: str
    confidence: float


def _iou(a: Box, b: Box) -> float:
    w = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    h = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    union = a.w * a.h + b.w * b.h - w * h
    return w * h / union if union > 0 else 0.0


def _candidate_order(quad: Quad) -> tuple[bool, float]:
    box = quad_to_box(quad)
    return not PLATE_ROW_ASPECT[0] <= box.w / max(box.h, 1e-6) <= PLATE_ROW_ASPECT[1], -box.w * box.h


def _fits(read: PlateRead) -> bool:
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
        score = read.confidence * weight
        plates.append(Detection(kind="plate", box=read.box, score=score, quality=score, attributes=attributes))
    plates.sort(key=lambda d: -d.score)
    kept: list[Detection] = []
    for det in plates:  # one record per plate: the same text twice, or overlapping reads, keep the best
        if any(k.attributes["plate_text"] == det.attributes["plate_text"] or _iou(k.box, det.box) > SAME_PLATE_IOU
               for k in kept):
            continue
        kept.append(det)
    return kept


class PlateFamily:
    """RapidOCR detector on vehicles (or the photo) at `det_max_side`, recogniser on full-resolution crops."""

    name = "plates"
    embedding_dim = 0

    def __init__(
        self,
        *,
        min_confidence: float = 0.5,
        intra_op_threads: int | None = None,
        det_max_side: int = 640,
        rec_min_width: int = REC_MIN_WIDTH,
    ) -> None:
        self.min_confidence = min_confidence
        self.intra_op_threads = intra_op_threads
        self.det_max_side = det_max_side
        self.rec_min_width = rec_min_width
        self._ocr: Any = None

    @cached_property
    def version(self) -> str:
        models = package_dir("rapidocr_onnxruntime", "install the pinned rapidocr-onnxruntime") / "models"
        digests = "+".join(sha256_file(models / name)[:12] for name in OCR_MODEL_FILES)
        narrow = "" if self.rec_min_width == REC_MIN_WIDTH else f"+rec{self.rec_min_width}"
        return f"rapidocr-onnxruntime-{importlib.metadata.version('rapidocr-onnxruntime')}@{digests}+crop-v2{narrow}"

    def load(self) -> None:
        if self._ocr is not None:
            return
        from rapidocr_onnxruntime import RapidOCR  # heavy import, only where the family is used

        # "max" limit: the detector keeps the size we resize to instead of upscaling to 736 px short side.
        kwargs: dict[str, Any] = {"det_limit_type": "max", "det_limit_side_len": self.det_max_side,
                                  "rec_img_shape": [3, 48, self.rec_min_width]}
        if self.intra_op_threads is not None:
            kwargs["intra_op_num_threads"] = self.intra_op_threads
        self._ocr = RapidOCR(**kwargs)

    def _text_lines(self, bgr: NDArray[np.uint8], region: Box, max_side: int) -> tuple[list[Quad], float]:
        """Text-line quads inside `region` of the photo, in photo pixels, and the detector's scale."""
        sl = region.as_int_slices()
        crop = bgr[sl]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return [], 1.0
        small, scale = resize_max_side(np.ascontiguousarray(crop), max_side)
        quads, _ = self._ocr.text_det(small)
        if quads is None or len(quads) == 0:
            return [], scale
        offset = np.array([sl[1].start, sl[0].start], dtype=np.float32)
        return [np.asarray(q, dtype=np.float32) / scale + offset for q in quads], scale

    def refine(self, bgr: NDArray[np.uint8], quad: Quad) -> Quad | None:
        """The text line found again on an upscaled patch around `quad` (None when nothing is found)."""
        box = quad_to_box(quad)
        height, width = bgr.shape[:2]
        patch = Box(box.x - 0.4 * box.w, box.y - 0.6 * box.h, 1.8 * box.w, 2.2 * box.h).clipped(width, height)
        side = max(REFINE_PATCH_SIDE, int(max(patch.w, patch.h)))  # only ever upscale the patch
        quads, _ = self._text_lines(bgr, patch, side)
        pieces = [q for q in merge_line_pieces(quads) if is_plate_shaped(q)]
        if not pieces:
            return None
        best = max(pieces, key=lambda q: _iou(quad_to_box(q), box))
        return best if _iou(quad_to_box(best), box) > SAME_PLATE_IOU else None

    def candidates(self, bgr: NDArray[np.uint8], vehicles: Sequence[Box] | None) -> list[tuple[Quad, float]]:
        """Plate-shaped text lines (merged pieces) and the detector's scale: at most `MAX_CANDIDATES`, largest first."""
        height, width = bgr.shape[:2]
        regions = [Box(0, 0, width, height)]
        if vehicles:
            largest = sorted(vehicles, key=lambda v: -v.w * v.h)[:MAX_VEHICLES]
            # Plates sit in a vehicle's lower part: search from VEHICLE_TOP_SKIP of its height down.
            regions = [
                Box(v.x - VEHICLE_MARGIN * v.w, v.y + VEHICLE_TOP_SKIP * v.h, v.w * (1 + 2 * VEHICLE_MARGIN),
                    v.h * (1 - VEHICLE_TOP_SKIP + VEHICLE_MARGIN)).clipped(width, height)
                for v in largest
            ]
        found: list[tuple[Quad, float]] = []
        for region in regions:
            side = min(self.det_max_side, int(MAX_REGION_UPSCALE * max(region.w, region.h)))
            quads, scale = self._text_lines(bgr, region, side)
            found.extend((q, scale) for q in merge_line_pieces(quads) if is_plate_shaped(q))
        found.sort(key=lambda item: _candidate_order(item[0]))
        return found[:MAX_CANDIDATES]

    def recognise(self, bgr: NDArray[np.uint8], quads: Sequence[Quad]) -> list[PlateRead]:
        """Recognition only, one batch, on rectified full-resolution crops of `quads`."""
        if not quads:
            return []
        results, _ = self._ocr.text_rec([rectified_crop(bgr, q) for q in quads])
        return [
            PlateRead(quad_to_box(q), str(text), float(conf)) for q, (text, conf) in zip(quads, results, strict=True)
        ]

    def read(self, bgr: NDArray[np.uint8], candidates: Sequence[tuple[Quad, float]]) -> list[PlateRead]:
        """One read per candidate; small lines whose read fits no plate format are refined and read again.

        Of the two reads the better wins: one that fits a known format, then the higher confidence.
        """
        reads = self.recognise(bgr, [q for q, _ in candidates])
        retry = [
            i for i, ((quad, scale), read) in enumerate(zip(candidates, reads, strict=True))
            if quad_to_box(quad).h * scale < REFINE_BELOW_DET_PX and not _fits(read)
        ][:MAX_REFINED]
        refined = {i: self.refine(bgr, candidates[i][0]) for i in retry}
        again = [i for i, quad in refined.items() if quad is not None]
        for i, read in zip(again, self.recognise(bgr, [q for i, q in refined.items() if q is not None]), strict=True):
            if (_fits(read), read.confidence) > (_fits(reads[i]), reads[i].confidence):
                reads[i] = read
        return reads

    def detect(self, image: RGBImage, vehicles: Sequence[Box] | None = None) -> list[Detection]:
        """Plates in an (H, W, 3) uint8 RGB photo; `vehicles` (boxes in the same pixels) narrow the search.

        With vehicle boxes, only their regions are searched; when no plate is read there (a vehicle box
        cut off, a plate on a trailer) the whole photo is searched as well.
        """
        require_rgb(image)
        self.load()
        bgr = rgb_to_bgr(image)  # RapidOCR's models take OpenCV's BGR order
        height, width = image.shape[:2]
        found = plate_detections(self.read(bgr, self.candidates(bgr, vehicles)), self.min_confidence, vehicles)
        if vehicles and not found:
            found = plate_detections(self.read(bgr, self.candidates(bgr, None)), self.min_confidence, vehicles)
        return [
            Detection(kind=d.kind, box=d.box.clipped(width, height), score=d.score, quality=d.quality,
                      attributes=d.attributes)
            for d in found
        ]

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        """(n, 0) float32: plates are matched by text (`plate_key`), not by vector."""
        return np.zeros((len(detections), 0), dtype=np.float32)
