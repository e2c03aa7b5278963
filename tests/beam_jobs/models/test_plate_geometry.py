"""Plate geometry: plate-shaped lines, merging pieces of one row, rectified upscaled crops."""

from __future__ import annotations

import numpy as np

from beam_jobs.models.base import Box
from beam_jobs.models.plate_geometry import (
    box_to_quad,
    covered_share,
    inside,
    is_plate_shaped,
    lower_part_share,
    merge_line_pieces,
    quad_to_box,
    rectified_crop,
    resize_max_side,
)


def test_plate_shape() -> None:
    assert is_plate_shaped(box_to_quad(Box(0, 0, 120, 30)))
    assert not is_plate_shaped(box_to_quad(Box(0, 0, 30, 60)))  # taller than wide
    assert not is_plate_shaped(box_to_quad(Box(0, 0, 40, 4)))  # a hairline


def test_pieces_of_one_row_merge_but_stacked_lines_do_not() -> None:
    left, right = box_to_quad(Box(100, 50, 40, 20)), box_to_quad(Box(150, 52, 45, 20))
    state = box_to_quad(Box(105, 25, 80, 18))  # "TEXAS" above the number, overlapping it in x
    far = box_to_quad(Box(400, 50, 40, 20))
    merged = [quad_to_box(q) for q in merge_line_pieces([right, state, left, far])]
    assert Box(100, 50, 95, 22) in merged
    assert Box(105, 25, 80, 18) in merged and Box(400, 50, 40, 20) in merged
    assert len(merged) == 3


def test_rectified_crop_is_upscaled_to_the_recogniser_height() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    image[40:60, 50:150] = 255
    crop = rectified_crop(image, box_to_quad(Box(50, 40, 100, 20)), pad=0.0, min_height=48)
    assert crop.shape[0] == 48 and crop.dtype == np.uint8
    assert abs(crop.shape[1] - 240) <= 1
    assert crop[24, 120].tolist() == [255, 255, 255]


def test_vehicle_relations_and_resize() -> None:
    car = Box(0, 0, 100, 100)
    assert inside(Box(40, 80, 20, 10), car) and not inside(Box(140, 80, 20, 10), car)
    assert lower_part_share(Box(40, 80, 20, 10), car) == 0.85
    resized, scale = resize_max_side(np.zeros((50, 100, 3), dtype=np.uint8), 200)
    assert resized.shape == (100, 200, 3) and scale == 2.0


def test_covered_share_is_the_largest_overlap_with_one_other_box() -> None:
    region = Box(100, 100, 100, 50)
    assert covered_share(region, []) == 0.0
    assert covered_share(region, [Box(0, 0, 500, 500)]) == 1.0
    assert covered_share(region, [Box(150, 100, 100, 50), Box(100, 100, 30, 50)]) == 0.5
    assert covered_share(Box(0, 0, 0, 10), [Box(50, 50, 1, 1)]) == 1.0  # an empty region needs no search
