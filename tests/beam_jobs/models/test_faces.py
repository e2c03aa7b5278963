"""YuNet + SFace on the real photos in shared/data/faces (identities from MANIFEST.csv)."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from beam_jobs.models.base import Box, Detection
from beam_jobs.models.faces import FaceFamily, FaceQualityRules, face_quality
from beam_jobs.models.transforms import l2_normalise

Loader = Callable[[str], NDArray[np.uint8]]


@pytest.fixture(scope="module")
def faces() -> FaceFamily:
    family = FaceFamily()
    family.load()
    return family


@pytest.fixture(scope="module")
def main_face(faces: FaceFamily, load_rgb: Loader) -> Callable[[str], NDArray[np.float32]]:
    """Embedding (128,) of the largest face in a photo."""

    def embed(name: str) -> NDArray[np.float32]:
        image = load_rgb(f"faces/{name}")
        detections = faces.detect(image)
        assert detections, f"no face found in {name}"
        biggest = max(detections, key=lambda d: d.box.w * d.box.h)
        return faces.embed(image, [biggest])[0]

    return embed


def test_embeddings_are_128d_unit_vectors(faces: FaceFamily, load_rgb: Loader) -> None:
    image = load_rgb("faces/obama_biden_2010_group.jpg")
    detections = faces.detect(image)
    vectors = faces.embed(image, detections)
    assert vectors.shape == (len(detections), 128) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert all(d.landmarks is not None and len(d.landmarks) == 5 for d in detections)


def test_same_person_is_closer_than_different_people(main_face: Callable[[str], NDArray[np.float32]]) -> None:
    obama = [
        main_face(n)
        for n in ("obama_2012_portrait.jpg", "obama_2009_congress.jpg", "obama_2010_blue_room_crop.jpg")
    ]
    biden = [main_face(n) for n in ("biden_2010_blue_room_crop.jpg", "biden_official_portrait.jpg")]
    same = [float(a @ b) for group in (obama, biden) for i, a in enumerate(group) for b in group[i + 1 :]]
    different = [float(a @ b) for a in obama for b in biden]
    # Measured: same 0.65-0.76, different 0.10-0.24.
    assert min(same) > 0.5 > 0.35 > max(different)


def test_compreface_person_a_and_b_separate(main_face: Callable[[str], NDArray[np.float32]]) -> None:
    a = [main_face(f"compreface_person_A_00{i}.jpg") for i in (2, 4, 5, 6)]
    b = [main_face(f"compreface_person_B_00{i}.jpg") for i in (7, 8)]
    same = [float(x @ y) for group in (a, b) for i, x in enumerate(group) for y in group[i + 1 :]]
    different = [float(x @ y) for x in a for y in b]
    # Measured: same 0.60-0.87, different 0.21-0.32.
    assert min(same) > max(different) + 0.2


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("compreface_group_5faces.jpg", 5),
        ("compreface_group_2faces.jpg", 2),
        ("obama_biden_2010_group.jpg", 2),
    ],
)
def test_group_photos_find_every_face(faces: FaceFamily, load_rgb: Loader, name: str, count: int) -> None:
    assert len(faces.detect(load_rgb(f"faces/{name}"))) >= count


def noses(ground_truth: str) -> list[tuple[float, float]]:
    field = next(part for part in ground_truth.split("; ") if part.startswith("nose_xy="))
    return [(float(x), float(y)) for x, y in (p.split(",") for p in field.removeprefix("nose_xy=").split())]


def contains(det: Detection, point: tuple[float, float]) -> bool:
    return det.box.x <= point[0] <= det.box.x + det.box.w and det.box.y <= point[1] <= det.box.y + det.box.h


def test_every_annotated_nose_is_inside_an_indexable_face(
    faces: FaceFamily, load_rgb: Loader, manifest: dict[str, dict[str, str]]
) -> None:
    annotated = [name for name, row in manifest.items() if "nose_xy=" in row["ground_truth"]]
    assert len(annotated) >= 9
    for name in annotated:
        detections = [d for d in faces.detect(load_rgb(name)) if d.indexable]
        for nose in noses(manifest[name]["ground_truth"]):
            assert any(contains(d, nose) for d in detections), f"{name}: no indexable face around nose {nose}"


def test_single_portraits_have_exactly_one_indexable_face(faces: FaceFamily, load_rgb: Loader) -> None:
    # person_A_002 and _006 also hold blurred background faces: found, but flagged out of the index.
    for name in ("compreface_person_A_002.jpg", "compreface_person_A_006.jpg", "obama_2012_portrait.jpg"):
        detections = faces.detect(load_rgb(f"faces/{name}"))
        assert sum(d.indexable for d in detections) == 1, name
    background = [d for d in faces.detect(load_rgb("faces/compreface_person_A_002.jpg")) if not d.indexable]
    assert background and all("blurred" in str(d.attributes["quality_reasons"]) for d in background)


def test_no_face_landscape_yields_none(faces: FaceFamily, load_rgb: Loader) -> None:
    assert faces.detect(load_rgb("faces/compreface_no_face_landscape.jpg")) == []


def test_tiny_face_is_flagged_too_small(faces: FaceFamily, load_rgb: Loader) -> None:
    detections = faces.detect(load_rgb("faces/codait_bryan.png"))  # a 115-px thumbnail
    assert len(detections) == 1 and not detections[0].indexable
    assert detections[0].attributes["quality_reasons"] == "too_small"


def test_face_quality_rules() -> None:
    rules = FaceQualityRules()
    assert face_quality(200, 1000, 0.95, rules) == (pytest.approx(0.95), [])
    assert face_quality(20, 1000, 0.95, rules)[1] == ["too_small"]
    quality, reasons = face_quality(200, 5, 0.5, rules)
    assert quality == 0.0 and reasons == ["blurred", "low_score"]


def test_faces_aligned_from_the_rgb_photo_equal_those_from_a_bgr_copy(faces: FaceFamily, load_rgb: Loader) -> None:
    # The family never converts the full photo; aligning the RGB photo and converting the 112-px crop
    # must give exactly the features OpenCV's usual path (align a BGR copy of the photo) gives.
    image = load_rgb("faces/compreface_group_2faces.jpg")
    detections = faces.detect(image)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    recognizer = faces._recognizer
    usual = [recognizer.feature(recognizer.alignCrop(bgr, row)).ravel() for row in faces._raw_faces(image)]
    assert len(usual) == len(detections) == 2
    np.testing.assert_array_equal(faces.embed(image, detections), l2_normalise(np.stack(usual)))


def test_version_names_the_detection_size() -> None:
    assert FaceFamily(max_side=960).version != FaceFamily().version
    assert FaceFamily().version.endswith("+det1280-v2")


def test_embedding_a_non_face_is_an_error(faces: FaceFamily, load_rgb: Loader) -> None:
    image = load_rgb("faces/chris_pratt.jpeg")
    with pytest.raises(ValueError, match="without landmarks"):
        faces.embed(image, [Detection(kind="vehicle", box=Box(0, 0, 10, 10), score=1, quality=1)])
