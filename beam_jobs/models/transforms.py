"""Pure pre- and post-processing shared by the model families: no model sessions, no I/O.

Shapes and dtypes are in each docstring. Boxes are (n, 4) float32 `x0, y0, x1, y1` unless said otherwise.
"""

from __future__ import annotations

from typing import cast

import cv2
import numpy as np
from numpy.typing import NDArray

YOLOX_STRIDES = (8, 16, 32)


def letterbox(
    image: NDArray[np.uint8], size: int = 416, pad_value: int = 114
) -> tuple[NDArray[np.uint8], float]:
    """Resize (H, W, C) uint8 keeping aspect so the long side is `size`, pad bottom/right with `pad_value`.

    YOLOX was trained with the image at the top-left corner (not centred), so boxes map back by
    dividing by the returned scale alone. Returns the (size, size, C) image and that scale.
    """
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(1, int(round(width * scale))), max(1, int(round(height * scale)))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    out = np.full((size, size, image.shape[2]), pad_value, dtype=np.uint8)
    out[:new_h, :new_w] = resized
    return out, scale


def yolox_grids(
    size: int = 416, strides: tuple[int, ...] = YOLOX_STRIDES
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Cell coordinates (n, 2) float32 and per-cell stride (n, 1) float32, in YOLOX output order."""
    grids, cell_strides = [], []
    for stride in strides:
        cells = size // stride
        ys, xs = np.meshgrid(np.arange(cells), np.arange(cells), indexing="ij")
        grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
        cell_strides.append(np.full((cells * cells, 1), stride))
    return np.concatenate(grids).astype(np.float32), np.concatenate(cell_strides).astype(np.float32)


def yolox_decode(
    raw: NDArray[np.float32], size: int = 416, strides: tuple[int, ...] = YOLOX_STRIDES
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Decode raw YOLOX output (n, 5 + classes) into boxes (n, 4) x0y0x1y1 and scores (n, classes).

    Rows are [dx, dy, log w, log h, objectness, class probs...] per grid cell; objectness and class
    probabilities are already sigmoid-ed by the exported head. Score = objectness * class probability.
    """
    grid, stride = yolox_grids(size, strides)
    if raw.shape[0] != grid.shape[0]:
        raise ValueError(f"raw output has {raw.shape[0]} rows, a {size}-px YOLOX grid has {grid.shape[0]}")
    centres = (raw[:, :2] + grid) * stride
    sizes = np.exp(raw[:, 2:4]) * stride
    boxes = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1).astype(np.float32)
    scores = (raw[:, 4:5] * raw[:, 5:]).astype(np.float32)
    return boxes, scores


def iou_one_to_many(box: NDArray[np.float32], boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    """IoU of one x0y0x1y1 box (4,) against (n, 4); returns (n,) float32."""
    ix0 = np.maximum(box[0], boxes[:, 0])
    iy0 = np.maximum(box[1], boxes[:, 1])
    ix1 = np.minimum(box[2], boxes[:, 2])
    iy1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return (inter / np.maximum(area + areas - inter, 1e-9)).astype(np.float32)


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], iou_threshold: float) -> NDArray[np.int64]:
    """Greedy non-maximum suppression; returns kept indices (k,) int64, best score first."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def classwise_nms(
    boxes: NDArray[np.float32],
    scores: NDArray[np.float32],
    classes: NDArray[np.int64],
    iou_threshold: float,
) -> NDArray[np.int64]:
    """NMS within each class only (a person on a motorcycle keeps both boxes); indices by score."""
    keep = [
        idx
        for cls in np.unique(classes)
        for idx in np.flatnonzero(classes == cls)[
            nms(boxes[classes == cls], scores[classes == cls], iou_threshold)
        ]
    ]
    kept = np.asarray(keep, dtype=np.int64)
    return kept[np.argsort(-scores[kept], kind="stable")] if kept.size else kept


def l2_normalise(vectors: NDArray[np.floating], eps: float = 1e-12) -> NDArray[np.float32]:
    """Rows of (n, d) scaled to unit L2 norm, as float32; all-zero rows stay zero (not NaN)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32)


def laplacian_variance(gray: NDArray[np.uint8]) -> float:
    """Variance of the Laplacian of a grey (H, W) uint8 image: a standard sharpness measure."""
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def rgb_to_bgr(image: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(H, W, 3) uint8 RGB -> BGR, the channel order OpenCV and the ONNX models were trained on."""
    return cast(NDArray[np.uint8], cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def downscale_max_side(image: NDArray[np.uint8], max_side: int) -> tuple[NDArray[np.uint8], float]:
    """Shrink (H, W, C) uint8 so its longer side is at most `max_side`; returns the image and the scale used.

    Area interpolation (no aliasing). A 20-megapixel photo is first reduced by the largest whole factor
    that keeps it above the target, OpenCV's fast path for area resizing (about 3x cheaper than one
    arbitrary-ratio area resize), then area-resized the rest of the way. Smaller images come back as they are.
    """
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1.0:
        return image, 1.0
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Whole reduction that keeps both sides at or above the target (and at least one pixel: a 4000x1 strip).
    factor = min(int(1 / scale), height, width)
    small = image
    if factor >= 2:
        small = np.asarray(cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_AREA))
    if (small.shape[1], small.shape[0]) != target:
        small = np.asarray(cv2.resize(small, target, interpolation=cv2.INTER_AREA))
    return np.ascontiguousarray(small, dtype=np.uint8), scale
