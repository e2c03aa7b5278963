"""The per-photo DoFns on TestPipeline (no S3): facts, detections from one decode, dead letters, the output split."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import cv2
import numpy as np
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.extraction import photo
from beam_jobs.extraction.decode import DecodedImage, decode_image
from beam_jobs.models import registry
from beam_jobs.models.faces import FaceFamily
from beam_jobs.pipeline.detect import detect_photo, load_families
from beam_jobs.pipeline.extract_pipeline import table_rows
from beam_jobs.pipeline.manifests import PendingPhoto
from beam_jobs.pipeline.transforms import Analysed, AnalysePhoto, Evidence, check_original
from beam_jobs.records import MODEL_FAILED, DeadLetter

from .poisoned_family import POISONED_FACES, poison_jpeg

RUN = "run-test"


def _pending(name: str, sha: str, position: tuple[float, float] | None = None, source: str | None = None
             ) -> PendingPhoto:
    return PendingPhoto(
        manifest_key=f"manifests/ev/{name}/{sha}.json", event_id="ev", submission_id=name, sha256=sha,
        object_key=f"originals/{sha[:2]}/{sha[2:4]}/{sha}", object_version=None,
        received_at=datetime(2024, 6, 1, 12, tzinfo=UTC), device_position=position, device_position_source=source,
    )


def _options() -> PipelineOptions:
    return PipelineOptions(["--runner=DirectRunner"])


def _summary(element: Analysed | DeadLetter) -> tuple[str, ...]:
    if isinstance(element, DeadLetter):
        return ("dead", element.reason, element.object_key, element.manifest_key)
    f = element.facts
    return ("photo", f.position_source, f"{f.lat:.5f}" if f.lat is not None else "-", f.time_source)


def test_extract_facts_routes_good_and_bad_photos(shared_data: Path, manifest: dict[str, dict[str, str]]) -> None:
    gps = (shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes()
    nogps = (shared_data / "exif/canon_sx60_rotated_nogps.jpg").read_bytes()
    truth = manifest["exif/gaia_nikon_p6000_DSCN0010.jpg"]["sha256"]
    nogps_sha = manifest["exif/canon_sx60_rotated_nogps.jpg"]["sha256"]
    inputs = [
        Evidence(_pending("gps", truth), gps),
        Evidence(_pending("pin", nogps_sha, (52.52, 13.405), "pin"), nogps),
        Evidence(_pending("rand", "f" * 64), b"\x00not an image" * 40),
        Evidence(_pending("cut", "e" * 64), gps[: len(gps) // 3]),
        DeadLetter(object_key="m", sha256=None, reason="manifest_invalid", detail="x", run_id=RUN, manifest_key="m"),
    ]
    with test_pipeline.TestPipeline(options=_options()) as pipeline:
        out = (
            pipeline
            | beam.Create(inputs)
            | beam.ParDo(AnalysePhoto(max_pixels=50_000_000, thumbnail_max_side=128, run_id=RUN))
            | beam.Map(_summary)
        )
        assert_that(out, equal_to([
            ("photo", "exif", "43.46745", "gps"),
            ("photo", "pin", "52.52000", "tz_from_position"),
            ("dead", "unsupported_format", "originals/ff/ff/" + "f" * 64, "manifests/ev/rand/" + "f" * 64 + ".json"),
            ("dead", "corrupt", "originals/ee/ee/" + "e" * 64, "manifests/ev/cut/" + "e" * 64 + ".json"),
            ("dead", "manifest_invalid", "m", "m"),
        ]))


def _detections_summary(element: Analysed | DeadLetter) -> list[tuple[str, str, tuple[float, ...], int]]:
    assert isinstance(element, Analysed), element
    return [(d.detection_id, d.kind, d.box, len(crop)) for d, crop in element.detections]


@pytest.mark.timeout(60)
def test_models_run_on_the_pixels_decoded_for_the_facts(shared_data: Path, manifest: dict[str, dict[str, str]],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    name = "faces/compreface_group_2faces.jpg"
    data, sha = (shared_data / name).read_bytes(), manifest[name]["sha256"]
    # What the separate model stage gave before the fusion: its own decode of the original, same functions.
    facts = photo.extract_photo(data, object_key="o", event_id="ev", submission_id="faces",
                                uploaded_at_utc=datetime(2024, 6, 1, 12, tzinfo=UTC), device_position=None,
                                max_pixels=50_000_000).facts
    pixels = np.asarray(decode_image(data, max_pixels=50_000_000).image.convert("RGB"))
    detected = detect_photo(load_families(["faces"], Path()), pixels, photo_id=facts.photo_id, crop_max_side=128)
    reference = detected.found
    assert reference and not detected.failures, "the 2-face photo should give detections"
    decodes: list[int] = []

    def counted_decode(data: bytes, *, max_pixels: int) -> DecodedImage:
        decodes.append(len(data))
        return decode_image(data, max_pixels=max_pixels)

    monkeypatch.setattr(photo, "decode_image", counted_decode)  # the DoFn runs in this process on DirectRunner
    with test_pipeline.TestPipeline(options=_options()) as pipeline:
        out = (
            pipeline
            | beam.Create([Evidence(_pending("faces", sha), data)])
            | beam.ParDo(AnalysePhoto(max_pixels=50_000_000, thumbnail_max_side=128, run_id=RUN, families=["faces"],
                                      crop_max_side=128))
            | beam.Map(_detections_summary)
        )
        assert_that(out, equal_to([[(d.detection_id, d.kind, d.box, len(crop)) for d, crop in reference]]))
    assert decodes == [len(data)]  # one decode per photo, facts and models together


def _outcome(element: Analysed | DeadLetter) -> tuple[object, ...]:
    if isinstance(element, DeadLetter):
        return ("dead", element.reason, element.object_key, element.sha256, element.detail, element.manifest_key)
    return ("photo", element.pending.submission_id, element.facts.width, len(element.thumbnail) > 0,
            tuple(d.kind for d, _ in element.detections))


@pytest.mark.timeout(60)
def test_a_family_raising_on_one_photo_costs_its_detections_not_the_photo(
        shared_data: Path, manifest: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.FAMILIES, "faces", POISONED_FACES)  # what `acquire_families` loads in setup()
    name = "faces/compreface_group_2faces.jpg"
    group, group_sha = (shared_data / name).read_bytes(), manifest[name]["sha256"]
    poison = poison_jpeg()
    poisoned = _pending("poison", hashlib.sha256(poison).hexdigest())
    faces_in_group = len(FaceFamily().detect(np.asarray(decode_image(group, max_pixels=50_000_000).image)))
    pipeline = test_pipeline.TestPipeline(options=_options())
    out = (
        pipeline
        | beam.Create([Evidence(_pending("group", group_sha), group), Evidence(poisoned, poison)])
        | beam.ParDo(AnalysePhoto(max_pixels=50_000_000, thumbnail_max_side=128, run_id=RUN, families=["faces"],
                                  crop_max_side=128))
        | beam.Map(_outcome)
    )
    detail = f"faces {FaceFamily().version}: error: injected: this family cannot read a 97x61 photo"
    assert_that(out, equal_to([
        ("photo", "group", 800, True, ("face",) * faces_in_group),
        ("photo", "poison", 97, True, ()),  # facts and thumbnail kept, no faces
        ("dead", MODEL_FAILED, poisoned.object_key, poisoned.sha256, detail, poisoned.manifest_key),
    ]))
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters[MODEL_FAILED] == counters[f"{MODEL_FAILED}.faces"] == 1
    assert "rejected" not in counters  # the photo was not rejected


def test_model_threads_cap_opencv_in_the_worker_that_loads_the_models() -> None:
    before = cv2.getNumThreads()
    cv2.setNumThreads(2)  # as OpenCV's default on two cores: the test must see the cap, not the default
    analyse = AnalysePhoto(max_pixels=1_000, thumbnail_max_side=64, run_id=RUN, families=["faces"], model_threads=1)
    try:
        analyse.setup()
        assert cv2.getNumThreads() == 1 and analyse.loaded is not None
    finally:
        cv2.setNumThreads(before)


@pytest.mark.parametrize(("data", "ok"), [(b"abc", True), (b"abd", False)])
def test_check_original_compares_with_the_manifest(data: bytes, ok: bool) -> None:
    sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    problem = check_original(_pending("x", sha), data)
    assert (problem is None) is ok


def test_table_rows_send_each_output_to_its_table() -> None:
    letter = DeadLetter(object_key="k", sha256=None, reason="r", detail="d", run_id=RUN, manifest_key="m")
    assert list(table_rows(letter)) == [("dead_letters", letter)]
    with pytest.raises(TypeError, match="str"):
        list(table_rows("not an output"))  # type: ignore[arg-type]
