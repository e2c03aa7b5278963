"""Pure pre/post-processing: letterbox, YOLOX grid decode, NMS, L2 normalisation, sharpness, downscaling."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from beam_jobs.models.transforms import (
    classwise_nms,
    downscale_max_side,
    l2_normalise,
    laplacian_variance,
    letterbox,
    nms,
    yolox_decode,
    yolox_grids,
)


def test_letterbox_keeps_aspect_and_pads_bottom_right() -> None:
    image = np.full((200, 400, 3), 7, dtype=np.uint8)
    out, scale = letterbox(image, 416, 114)
    assert out.shape == (416, 416, 3) and out.dtype == np.uint8
    assert scale == pytest.approx(416 / 400)
    assert (out[:208] == 7).all()
    assert (out[208:] == 114).all()


def test_letterbox_upscales_small_images() -> None:
    out, scale = letterbox(np.zeros((10, 20, 3), dtype=np.uint8), 416)
    assert scale == pytest.approx(20.8)
    assert (out[:208] == 0).all() and (out[208:] == 114).all()


def test_yolox_grid_has_3549_cells_in_stride_order() -> None:
    grid, stride = yolox_grids(416)
    assert grid.shape == (52 * 52 + 26 * 26 + 13 * 13, 2) == (3549, 2)
    assert stride[0, 0] == 8 and stride[-1, 0] == 32
    # Row-major within a level: the second cell is x=1, y=0.
    assert grid[1].tolist() == [1.0, 0.0] and grid[52].tolist() == [0.0, 1.0]


def test_yolox_decode_places_a_box_from_its_cell() -> None:
    raw = np.zeros((3549, 85), dtype=np.float32)
    cell = 52 * 52 + 26 * 3 + 5  # stride-16 level, x=5, y=3
    raw[cell, :4] = [0.5, 0.5, np.log(2.0), np.log(4.0)]
    raw[cell, 4] = 0.9
    raw[cell, 5 + 2] = 0.5  # class 2 (car)
    boxes, scores = yolox_decode(raw, 416)
    centre_x, centre_y = (5 + 0.5) * 16, (3 + 0.5) * 16
    np.testing.assert_allclose(boxes[cell], [centre_x - 16, centre_y - 32, centre_x + 16, centre_y + 32])
    assert scores.shape == (3549, 80)
    assert scores[cell, 2] == pytest.approx(0.45)
    assert float(np.delete(scores, cell, axis=0).max()) == 0.0


def test_yolox_decode_rejects_a_wrong_grid() -> None:
    with pytest.raises(ValueError, match="3549"):
        yolox_decode(np.zeros((100, 85), dtype=np.float32), 416)


def test_nms_matches_brute_force_on_seeded_boxes() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(60, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(10, 40, size=(60, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(size=60).astype(np.float32)
    kept = nms(boxes, scores, 0.5)

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    reference: list[int] = []
    for i in sorted(range(60), key=lambda k: -scores[k]):
        if all(iou(boxes[i], boxes[j]) <= 0.5 for j in reference):
            reference.append(i)
    assert kept.tolist() == reference


def test_classwise_nms_keeps_overlapping_boxes_of_different_classes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    scores = np.array([0.9, 0.8, 0.7], dtype=np.float32)
    classes = np.array([2, 2, 0], dtype=np.int64)
    assert classwise_nms(boxes, scores, classes, 0.5).tolist() == [0, 2]
    assert classwise_nms(boxes[:0], scores[:0], classes[:0], 0.5).size == 0


def test_l2_normalise_rows_and_zero_rows() -> None:
    out = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_laplacian_variance_prefers_sharp_edges() -> None:
    sharp = np.zeros((64, 64), dtype=np.uint8)
    sharp[:, ::4] = 255
    flat = np.full((64, 64), 128, dtype=np.uint8)
    assert laplacian_variance(sharp) > 1000 > laplacian_variance(flat) == 0.0


@pytest.mark.parametrize(
    ("shape", "max_side"), [((5184, 3880, 3), 1280), ((2333, 1434, 3), 1280), ((1200, 626, 3), 640)]
)
def test_downscale_max_side_matches_one_area_resize(shape: tuple[int, int, int], max_side: int) -> None:
    # Smooth seeded content (a blurred random field): the two-step area reduction must equal the
    # one-step area resize up to rounding, and give exactly the size and scale the caller maps boxes with.
    rng = np.random.default_rng(7)
    field = np.asarray(cv2.resize(rng.integers(0, 256, (shape[0] // 64, shape[1] // 64, 3), dtype=np.uint8),
                                  (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    small, scale = downscale_max_side(field, max_side)
    assert scale == pytest.approx(max_side / max(shape[:2]))
    target = (round(shape[1] * scale), round(shape[0] * scale))
    assert (small.shape[1], small.shape[0]) == target and small.dtype == np.uint8
    reference = cv2.resize(field, target, interpolation=cv2.INTER_AREA)
    assert np.abs(small.astype(np.int16) - reference.astype(np.int16)).mean() < 1.0


def test_downscale_max_side_leaves_small_images_alone() -> None:
    image = np.zeros((300, 400, 3), dtype=np.uint8)
    small, scale = downscale_max_side(image, 640)
    assert small is image and scale == 1.0


def test_downscaling_a_one_pixel_strip_keeps_one_pixel() -> None:
    strip = np.full((1, 4000, 3), 200, dtype=np.uint8)
    small, scale = downscale_max_side(strip, 1280)
    assert small.shape == (1, 1280, 3) and scale == 1280 / 4000
