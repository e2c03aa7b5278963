"""Colour naming on synthetic colour patches."""

from __future__ import annotations

import numpy as np
import pytest

from beam_jobs.models.colours import dominant_colour


def patch(rgb: tuple[int, int, int], size: int = 40) -> np.ndarray:
    return np.full((size, size, 3), rgb, dtype=np.uint8)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((10, 10, 12), "black"),
        ((90, 90, 95), "grey"),
        ((170, 172, 175), "silver"),
        ((245, 245, 240), "white"),
        ((200, 20, 25), "red"),
        ((240, 130, 20), "orange"),
        ((110, 70, 30), "brown"),
        ((240, 220, 30), "yellow"),
        ((30, 140, 50), "green"),
        ((20, 60, 180), "blue"),
        ((120, 40, 170), "purple"),
        ((230, 80, 170), "pink"),
    ],
)
def test_uniform_patch_gets_its_name(rgb: tuple[int, int, int], name: str) -> None:
    colour, share = dominant_colour(patch(rgb))
    assert colour == name
    assert share == pytest.approx(1.0)


def test_body_colour_beats_grey_glass_and_black_tyres() -> None:
    car = patch((200, 20, 25), 100)
    car[:45] = (80, 80, 85)  # windows
    car[80:] = (15, 15, 15)  # tyres and shadow
    assert dominant_colour(car)[0] == "red"


def test_background_at_the_edges_is_ignored() -> None:
    crop = patch((20, 60, 180), 100)
    crop[:, :25] = (245, 245, 240)
    crop[:, 75:] = (245, 245, 240)
    assert dominant_colour(crop)[0] == "blue"


def test_empty_crop_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        dominant_colour(np.zeros((0, 5, 3), dtype=np.uint8))
