"""The detection record, weight verification and the family registry."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from beam_jobs.models.base import (
    Box,
    Detection,
    ModelFamily,
    ModelIntegrityError,
    ModelNotInstalledError,
    require_rgb,
    verified_weight,
)
from beam_jobs.models.registry import FAMILIES, create


def test_box_clipping_and_slices() -> None:
    box = Box(-5, 10, 30, 100).clipped(20, 50)
    assert box == Box(0, 10, 20, 40)
    rows, cols = box.as_int_slices()
    assert np.zeros((50, 20))[rows, cols].shape == (40, 20)


def test_low_quality_detection_is_not_indexable() -> None:
    good = Detection(kind="face", box=Box(0, 0, 1, 1), score=0.9, quality=0.9)
    bad = Detection(
        kind="face", box=Box(0, 0, 1, 1), score=0.9, quality=0.0, attributes={"low_quality": True}
    )
    assert good.indexable and not bad.indexable


def test_verified_weight_names_the_missing_file_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match="run the installer"):
        verified_weight(tmp_path / "m.onnx", "00", "run the installer")
    (tmp_path / "m.onnx").write_bytes(b"weights")
    with pytest.raises(ModelIntegrityError, match="expected 00"):
        verified_weight(tmp_path / "m.onnx", "00", "hint")
    digest = hashlib.sha256(b"weights").hexdigest()
    assert verified_weight(tmp_path / "m.onnx", digest, "hint") == tmp_path / "m.onnx"


def test_require_rgb_rejects_grey_and_float() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        require_rgb(np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="float32"):
        require_rgb(np.zeros((4, 4, 3), dtype=np.float32))


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_registry_builds_families_without_loading(name: str, tmp_path: Path) -> None:
    options = {"models_dir": tmp_path} if name == "objects" else {}
    family = create(name, **options)
    assert isinstance(family, ModelFamily)
    assert family.name == name
    assert "@" in family.version  # weights are named by sha256 prefix


def test_registry_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="faces, objects, plates"):
        create("clip")
