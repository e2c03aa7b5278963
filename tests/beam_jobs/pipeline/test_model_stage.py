"""The model stage in the job: faces, vehicles and plates on real photos, crops in S3, same on Dask."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from beam_jobs.extraction.decode import decode_image
from beam_jobs.models.base import Box, RGBImage
from beam_jobs.models.base import Detection as ModelDetection
from beam_jobs.models.faces import FaceFamily
from beam_jobs.pipeline.catalog import read_committed
from beam_jobs.pipeline.detect import (
    MAX_ERROR_CHARS,
    ModelFailure,
    describe_error,
    detect_photo,
    has_pixels,
    installed_families,
    resolve_families,
)
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from infra.storage.client import build_client
from infra.storage.objects import read_bytes

from .conftest import put_evidence
from .poisoned_family import PoisonedFaces, poison_jpeg, strip_jpeg

EVIDENCE = "pl-evidence-models"
PHOTOS = ["faces/obama_biden_2010_group.jpg", "vehicles/br_iphone5_AZJ6991.jpg", "faces/compreface_group_2faces.jpg"]
MakeSettings = Callable[[str, str], ExtractSettings]


def test_resolve_families(tmp_path: Path) -> None:
    assert "objects" not in installed_families(tmp_path)  # no YOLOX file in an empty folder
    assert resolve_families([], tmp_path) == ()
    assert resolve_families(["plates", "faces"], tmp_path) == ("faces", "plates")
    with pytest.raises(ValueError, match="unknown model families"):
        resolve_families(["clip"], tmp_path)


@pytest.mark.parametrize(("box", "expected"), [
    (Box(10, 10, 20, 30), True),
    (Box(0, 0, 1, 0), False),  # seen from a plate model mid-change: it failed the whole run
    (Box(5, 5, 0.3, 10), False),  # rounds to no column
    (Box(-50, 10, 40, 10), False),  # entirely left of the photo
    (Box(95, 95, 30, 30), True),  # partly outside: the crop is the inside part
])
def test_has_pixels(box: Box, expected: bool) -> None:
    assert has_pixels(box, 100, 100) is expected


def _pixels(data: bytes) -> RGBImage:
    return np.asarray(decode_image(data, max_pixels=50_000_000).image.convert("RGB"))


@pytest.mark.timeout(60)
def test_a_raising_family_is_skipped_and_reported_the_others_still_run(shared_data: Path) -> None:
    poisoned, real = PoisonedFaces(), FaceFamily()
    poisoned.load()
    real.load()
    poison = detect_photo([poisoned, real], _pixels(poison_jpeg()), photo_id="p", crop_max_side=64)
    assert poison.failures == (ModelFailure("faces", poisoned.version,
                                            "error: injected: this family cannot read a 97x61 photo"),)
    assert poison.found == ()  # noise: the real family after it ran and found no face
    group = _pixels((shared_data / "faces/compreface_group_2faces.jpg").read_bytes())
    both = detect_photo([poisoned, real], group, photo_id="g", crop_max_side=64)
    assert both.failures == () and len(both.found) == 2 * len(real.detect(group)) > 0


def test_the_real_face_family_reads_a_one_pixel_strip_without_failing() -> None:
    """Found while writing the poison-pill handling: the detection copy's downscale asserted on a 4000x1 photo."""
    strip = detect_photo([FaceFamily()], _pixels(strip_jpeg()), photo_id="s", crop_max_side=64)
    # What YuNet makes of 4000 noise pixels in a row is not the point (one CI machine found a "face", this one none).
    assert strip.failures == ()


class _OutOfMemoryFaces(FaceFamily):
    def detect(self, image: RGBImage) -> list[ModelDetection]:
        raise MemoryError("worker out of memory")


def test_memory_errors_still_fail_the_run() -> None:
    with pytest.raises(MemoryError):
        detect_photo([_OutOfMemoryFaces()], _pixels(poison_jpeg()), photo_id="p", crop_max_side=64)


def test_describe_error_names_the_type_and_bounds_the_message() -> None:
    assert describe_error(ValueError("bad shape")) == "ValueError: bad shape"
    long = describe_error(RuntimeError("x" * 5000))
    assert len(long) == MAX_ERROR_CHARS and long.startswith("RuntimeError: xxx") and long.endswith("...")


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_models_in_the_job_on_direct_and_dask(make_settings: MakeSettings, shared_data: Path,
                                              dask_address: str) -> None:
    direct = make_settings(EVIDENCE, "pl-catalog-models-direct")
    if set(resolve_families(None, direct.models_dir)) != {"faces", "objects", "plates"}:
        pytest.fail("model weights missing: run `python -m beam_jobs.models.install`")
    client = build_client(direct.s3)
    for name in PHOTOS:
        put_evidence(client, direct.s3.buckets.evidence, name=name, data=(shared_data / name).read_bytes())

    summary = run_extract(direct, runner="DirectRunner", models=["faces", "objects", "plates"])
    assert summary.rows("photos") == 3 and summary.metrics["detect_ms.count"] == 3
    detections = read_committed(client, direct.s3.buckets.catalog, "detections").to_pylist()
    faces = [d for d in detections if d["kind"] == "face"]
    assert len([f for f in faces if json.loads(f["attributes"])["indexable"]]) >= 4
    assert all(len(f["embedding"]) == 128 for f in faces)
    plates = {json.loads(d["attributes"])["plate_text"] for d in detections if d["kind"] == "plate"}
    assert "AZJ6991" in plates
    cars = [d for d in detections if d["kind"] == "vehicle" and json.loads(d["attributes"])["class"] == "car"]
    assert cars and all(d["model_version"].startswith("yolox-nano@") for d in cars)
    crop = Image.open(io.BytesIO(read_bytes(client, direct.s3.buckets.derived, str(cars[0]["crop_key"]))))
    assert crop.format == "JPEG" and not crop.getexif()

    dask = make_settings(EVIDENCE, "pl-catalog-models-dask")
    run_extract(dask, runner="DaskRunner", models=["faces", "objects", "plates"],
                beam_args=[f"--dask_client_address={dask_address}", "--dask_npartitions=2"])
    on_dask = {d["detection_id"]: d for d in read_committed(client, dask.s3.buckets.catalog, "detections").to_pylist()}
    assert set(on_dask) == {d["detection_id"] for d in detections}
    for det in detections:  # determinism: same boxes and embeddings on both runners
        other = on_dask[det["detection_id"]]
        assert other["box"] == pytest.approx(det["box"], abs=1e-3)
        if det["embedding"] is not None:
            assert np.allclose(other["embedding"], det["embedding"], atol=1e-5)
