"""Plate family: find and read licence plates with RapidOCR (PP-OCRv4 ONNX inside `rapidocr-onnxruntime`).

Two steps, each on the resolution that suits it, and a fallback:

1. Localise: RapidOCR's text detector runs on the lower part of each vehicle box the caller passes
   (`detect(image, vehicles=...)`), or on the whole photo, resized so its longer side is `det_max_side`
   (640: all plates of the test photos found, a third of the cost of the library's 736-px-short-side
   default; squarish vehicle regions get at most the pixels of a 640 x 320 input). Text lines with a
   plate's proportions are kept, pieces of one row are merged (`plate_geometry`).
2. Read: each candidate is cut from the FULL-resolution photo, deskewed, padded and upscaled to the
   recogniser's 48-px height, and the recogniser alone reads the crop (no text detection or angle
   classifier on the crop: on a whole plate they split and reorder the text). In a vehicle region the
   lines are read largest first and reading stops at the first confident read that fits a known plate
   format (a vehicle shows one plate); whole-photo candidates are all read, in one batch.
3. Fallback: where no read of a search region (a vehicle, or the whole photo) is plate-like, the same
   quads are read again by a second recogniser, PP-OCRv6 small (`plate_fallback`), and its plate-like
   reads replace the failed ones. Every plate records which recogniser read it (`plate_recogniser`).

Reads become ranked `plate` detections in `plate_ranking` (raw read, plate text, search key, confidence).
Plates carry no embedding: they are searched by text, so `embed` returns (n, 0).
Run it through the extraction job, or alone: `.venv/bin/python bench/models.py --only plates`.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection, RGBImage, package_dir, require_rgb, sha256_file
from beam_jobs.models.plate_fallback import FallbackRecogniser
from beam_jobs.models.plate_geometry import (
    Quad,
    covered_share,
    is_plate_shaped,
    merge_line_pieces,
    quad_to_box,
    rectified_crop,
    resize_max_side,
)
from beam_jobs.models.plate_ranking import (
    SAME_PLATE_IOU,
    PlateRead,
    fits_plate,
    iou,
    plate_detections,
)
from beam_jobs.models.plate_text import is_confident_word
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
# The detector's cost grows with its input's pixels. A vehicle's lower part is about twice as wide as
# tall and fits `det_max_side` x half of it; a squarer region (a vehicle cut by the frame, seen side-on,
# or a second car mostly hidden) is searched at no more pixels than that, so slightly coarser.
REGION_MAX_ASPECT_PIXELS = 0.5
# Refinement: a line found on a downscaled photo with fewer than this many pixels of height (in the
# detector's image) gets a second, local detection on an upscaled patch around it, so the crop hugs
# the characters (a coarse box clips the first/last character or takes in the plate frame's text).
REFINE_BELOW_DET_PX = 24.0
REFINE_PATCH_SIDE = 320
MAX_REFINED = 4
# A read this sure of a text with no digit is a word (a make, a state name, a dealer sign): a tighter
# crop of it reads the same word, so it is not refined (on the real photos such words were half of all
# refinements, ~30 ms per photo, and never became a plate).
WORD_CONFIDENCE = 0.8
# A vehicle region lying this much inside a region already searched at a similar detector scale (a car
# detected twice, a cab inside its truck) is not searched again.
COVERED_SHARE = 0.8
SIMILAR_SCALE = 0.8
# A vehicle shows one plate per side, and its largest plate-shaped line is nearly always that plate: once
# a read in a vehicle region fits a known format with this confidence, the region's other lines (badges,
# dealer frames, state names) are not read. On the 22 real photos the plate was the first line read in
# every vehicle region where it was read at all; this halves the crops read per photo.
SETTLED_CONFIDENCE = 0.8
# The recogniser pads every crop to at least this width (48 px high). 320 is PP-OCR's training shape and
# RapidOCR's default; a narrower pad is cheaper (192: -10 % CPU per photo with vehicle boxes, measured)
# but reads differ: on the 22 real photos it kept 20/22 with vehicle boxes and lost one whole-photo read
# (bench/models.py), so it is an option with its own version, not the default.
REC_MIN_WIDTH = 320


@dataclass(frozen=True)
class Candidate:
    """A plate-shaped text line: its quad in photo pixels, the detector's scale where it was found, and
    the index of the vehicle region it was found in (None: found on the whole photo)."""

    quad: Quad
    scale: float
    vehicle: int | None


def _candidate_order(candidate: Candidate) -> tuple[bool, float]:
    box = quad_to_box(candidate.quad)
    return not PLATE_ROW_ASPECT[0] <= box.w / max(box.h, 1e-6) <= PLATE_ROW_ASPECT[1], -box.w * box.h


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
        self.fallback = FallbackRecogniser(intra_op_threads=intra_op_threads)

    @cached_property
    def _rapidocr(self) -> tuple[str, Path]:
        models = package_dir("rapidocr_onnxruntime", "install the pinned rapidocr-onnxruntime") / "models"
        return f"rapidocr-onnxruntime-{importlib.metadata.version('rapidocr-onnxruntime')}", models

    @cached_property
    def recogniser(self) -> str:
        """The first recogniser, as plate records name it: `rapidocr-onnxruntime-1.4.4/ch_PP-OCRv4_rec_infer@<sha>`."""
        package, models = self._rapidocr
        rec_file = OCR_MODEL_FILES[1]
        return f"{package}/{rec_file.removesuffix('.onnx')}@{sha256_file(models / rec_file)[:12]}"

    @cached_property
    def version(self) -> str:
        package, models = self._rapidocr
        digests = "+".join(sha256_file(models / name)[:12] for name in OCR_MODEL_FILES)
        narrow = "" if self.rec_min_width == REC_MIN_WIDTH else f"+rec{self.rec_min_width}"
        return f"{package}@{digests}+{self.fallback.version}+crop-v4{narrow}"

    def load(self) -> None:
        self.fallback.load()
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
        best = max(pieces, key=lambda q: iou(quad_to_box(q), box))
        return best if iou(quad_to_box(best), box) > SAME_PLATE_IOU else None

    def region_side(self, region: Box, *, vehicle: bool) -> int:
        """Longer side, in detector pixels, at which a region is searched (vehicles: see REGION_MAX_ASPECT_PIXELS)."""
        longer, shorter = max(region.w, region.h, 1.0), min(region.w, region.h)
        side = min(float(self.det_max_side), MAX_REGION_UPSCALE * longer)
        if not vehicle:
            return int(side)
        max_pixels = REGION_MAX_ASPECT_PIXELS * self.det_max_side**2
        pixels = side * side * shorter / longer
        if pixels > max_pixels:
            side *= (max_pixels / pixels) ** 0.5
        return int(side)

    def candidates(self, bgr: NDArray[np.uint8], vehicles: Sequence[Box] | None) -> list[Candidate]:
        """Plate-shaped text lines (merged pieces): at most `MAX_CANDIDATES`, plate-proportioned and largest first."""
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
        found: list[Candidate] = []
        searched: list[tuple[Box, float]] = []
        for index, region in enumerate(regions):
            side = self.region_side(region, vehicle=bool(vehicles))
            wanted_scale = side / max(region.w, region.h, 1.0)
            similar = [box for box, scale in searched if scale >= SIMILAR_SCALE * wanted_scale]
            if covered_share(region, similar) >= COVERED_SHARE:
                continue
            quads, scale = self._text_lines(bgr, region, side)
            searched.append((region, scale))
            vehicle = index if vehicles else None
            found.extend(Candidate(q, scale, vehicle) for q in merge_line_pieces(quads) if is_plate_shaped(q))
        found.sort(key=_candidate_order)
        return found[:MAX_CANDIDATES]

    def recognise(self, bgr: NDArray[np.uint8], quads: Sequence[Quad]) -> list[PlateRead]:
        """Recognition only, one batch, on rectified full-resolution crops of `quads`."""
        if not quads:
            return []
        results, _ = self._ocr.text_rec([rectified_crop(bgr, q) for q in quads])
        return [
            PlateRead(quad_to_box(q), str(text), float(conf), self.recogniser)
            for q, (text, conf) in zip(quads, results, strict=True)
        ]

    def first_reads(self, bgr: NDArray[np.uint8], candidates: Sequence[Candidate]) -> list[tuple[Candidate, PlateRead]]:
        """Candidates paired with their reads. Whole-photo candidates are read in one batch; vehicle
        candidates one by one, skipping the rest of a region once it is settled (SETTLED_CONFIDENCE).
        Batch 1 costs no more per crop than a batch here: the recogniser pads a batch to its widest crop."""
        if all(c.vehicle is None for c in candidates):
            return list(zip(candidates, self.recognise(bgr, [c.quad for c in candidates]), strict=True))
        pairs: list[tuple[Candidate, PlateRead]] = []
        settled: set[int | None] = set()
        for candidate in candidates:
            if candidate.vehicle in settled:
                continue
            (read,) = self.recognise(bgr, [candidate.quad])
            pairs.append((candidate, read))
            if candidate.vehicle is not None and fits_plate(read) and read.confidence >= SETTLED_CONFIDENCE:
                settled.add(candidate.vehicle)
        return pairs

    def read(self, bgr: NDArray[np.uint8], candidates: Sequence[Candidate]) -> list[PlateRead]:
        """Reads of the candidates (`first_reads`); small lines whose read fits no plate format and is
        not a sure word are refined and read again; then the fallback (`FallbackRecogniser.reread`).

        Of the two reads the better wins: one that fits a known format, then the higher confidence.
        """
        pairs = self.first_reads(bgr, candidates)
        reads = [read for _, read in pairs]
        quads = [candidate.quad for candidate, _ in pairs]
        retry = [
            i for i, (candidate, read) in enumerate(pairs)
            if quad_to_box(candidate.quad).h * candidate.scale < REFINE_BELOW_DET_PX and not fits_plate(read)
            and not is_confident_word(read.raw, read.confidence, WORD_CONFIDENCE)
        ][:MAX_REFINED]
        refined = {i: quad for i in retry if (quad := self.refine(bgr, pairs[i][0].quad)) is not None}
        for (i, quad), read in zip(refined.items(), self.recognise(bgr, list(refined.values())), strict=True):
            if (fits_plate(read), read.confidence) > (fits_plate(reads[i]), reads[i].confidence):
                reads[i], quads[i] = read, quad
        regions = [candidate.vehicle for candidate, _ in pairs]
        return self.fallback.reread(bgr, regions, quads, reads, self.min_confidence)

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
