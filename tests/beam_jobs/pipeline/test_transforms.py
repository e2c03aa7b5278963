"""The per-photo DoFns on TestPipeline (no S3): facts, dead letters with reasons, the output split."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs.pipeline.manifests import PendingPhoto
from beam_jobs.pipeline.transforms import Evidence, ExtractFacts, Facts, check_original, only
from beam_jobs.records import DeadLetter

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


def _summary(element: Facts | DeadLetter) -> tuple[str, ...]:
    if isinstance(element, DeadLetter):
        return ("dead", element.reason, element.object_key)
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
        DeadLetter(object_key="m", sha256=None, reason="manifest_invalid", detail="x", run_id=RUN),
    ]
    with test_pipeline.TestPipeline(options=_options()) as pipeline:
        out = (
            pipeline
            | beam.Create(inputs)
            | beam.ParDo(ExtractFacts(max_pixels=50_000_000, thumbnail_max_side=128, run_id=RUN))
            | beam.Map(_summary)
        )
        assert_that(out, equal_to([
            ("photo", "exif", "43.46745", "gps"),
            ("photo", "pin", "52.52000", "tz_from_position"),
            ("dead", "unsupported_format", "originals/ff/ff/" + "f" * 64),
            ("dead", "corrupt", "originals/ee/ee/" + "e" * 64),
            ("dead", "manifest_invalid", "m"),
        ]))


def test_only_splits_a_single_output() -> None:
    letter = DeadLetter(object_key="k", sha256=None, reason="r", detail="d", run_id=RUN)
    with test_pipeline.TestPipeline(options=_options()) as pipeline:
        mixed = pipeline | beam.Create([letter, "not a letter", letter])
        assert_that(mixed | beam.FlatMap(only(DeadLetter)), equal_to([letter, letter]))


@pytest.mark.parametrize(("data", "ok"), [(b"abc", True), (b"abd", False)])
def test_check_original_compares_with_the_manifest(data: bytes, ok: bool) -> None:
    sha = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    problem = check_original(_pending("x", sha), data)
    assert (problem is None) is ok
