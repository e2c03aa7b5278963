"""Plate family: find and read licence plates with RapidOCR (PP-OCRv4 ONNX inside `rapidocr-onnxruntime`).

RapidOCR's text detector localises every text line in the photo and its recogniser reads it; lines that
look like plates (`plate_text.is_plate_like`) become `plate` detections with the raw read, the normalised
text, a confusable-folded search key and the recogniser's confidence. Signs with mixed letters and digits
can still slip through; the extraction job can prefer plates lying inside a vehicle box.
Plates carry no embedding: they are searched by text, so `embed` returns (n, 0).
"""

from __future__ import annotations

import importlib.metadata
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection, RGBImage, package_dir, require_rgb, sha256_file
from beam_jobs.models.plate_text import is_plate_like, normalise_plate, search_key
from beam_jobs.models.transforms import rgb_to_bgr

OCR_MODEL_FILES = ("ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx")


def polygon_to_box(points: list[list[float]] | NDArray[np.float32]) -> Box:
    """Axis-aligned box around an OCR quadrilateral (4 points x, y)."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def plate_detections(ocr_lines: list[tuple[Any, str, float]], min_confidence: float) -> list[Detection]:
    """RapidOCR result lines `(quad, text, confidence)` -> plate detections, most confident first."""
    plates = []
    for quad, raw, confidence in ocr_lines:
        if float(confidence) < min_confidence or not is_plate_like(raw):
            continue
        text = normalise_plate(raw)
        plates.append(
            Detection(
                kind="plate",
                box=polygon_to_box(quad),
                score=float(confidence),
                quality=float(confidence),
                attributes={
                    "class": "plate",
                    "plate_raw": raw,
                    "plate_text": text,
                    "plate_key": search_key(text),
                    "plate_confidence": round(float(confidence), 4),
                },
            )
        )
    return sorted(plates, key=lambda d: -d.score)


class PlateFamily:
    """RapidOCR det + rec over the whole photo (or a vehicle crop passed as the image)."""

    name = "plates"
    embedding_dim = 0

    def __init__(self, *, min_confidence: float = 0.5, intra_op_threads: int | None = None) -> None:
        self.min_confidence = min_confidence
        self.intra_op_threads = intra_op_threads
        self._ocr: Any = None

    @cached_property
    def version(self) -> str:
        models = package_dir("rapidocr_onnxruntime", "install the pinned rapidocr-onnxruntime") / "models"
        digests = "+".join(sha256_file(models / name)[:12] for name in OCR_MODEL_FILES)
        return f"rapidocr-onnxruntime-{importlib.metadata.version('rapidocr-onnxruntime')}@{digests}"

    def load(self) -> None:
        if self._ocr is not None:
            return
        from rapidocr_onnxruntime import RapidOCR  # heavy import, only where the family is used

        kwargs = {} if self.intra_op_threads is None else {"intra_op_num_threads": self.intra_op_threads}
        self._ocr = RapidOCR(**kwargs)

    def detect(self, image: RGBImage) -> list[Detection]:
        require_rgb(image)
        self.load()
        # RapidOCR's pipeline expects OpenCV's BGR order.
        result, _ = self._ocr(rgb_to_bgr(image), use_cls=False)
        lines = [(quad, str(text), float(conf)) for quad, text, conf in (result or [])]
        height, width = image.shape[:2]
        return [
            Detection(
                kind=d.kind,
                box=d.box.clipped(width, height),
                score=d.score,
                quality=d.quality,
                attributes=d.attributes,
            )
            for d in plate_detections(lines, self.min_confidence)
        ]

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        """(n, 0) float32: plates are matched by text (`plate_key`), not by vector."""
        return np.zeros((len(detections), 0), dtype=np.float32)
