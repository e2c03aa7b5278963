"""Per-photo DoFns of the extraction job, each a thin shell around pure functions.

ReadEvidence (manifest key -> manifest + original bytes) -> AnalysePhoto (`extract_photo`, then the model
families' `detect_photo` on the same decoded pixels) -> WriteDerived (thumbnail and crops to the derived bucket,
EXIF-free) -> `Extracted` (photo record + its detections).

A model family raising on a photo costs that family's detections, not the photo (a `model_failed` dead letter).
Every DoFn has ONE output whose elements are either the next stage's value or a `DeadLetter`
(`extract_pipeline.table_rows` sends each to its table). Not tagged outputs: Beam 2.77's DaskRunner hands
every consumer of a multi-output ParDo all of its outputs, tags ignored (measured; see infra/RUNNERS.md).
S3 clients are built in `setup()` from the plain `S3Settings` passed to the constructor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.utils.shared import Shared
from minio import Minio
from minio.error import S3Error
from PIL import Image

from beam_jobs.extraction.photo import RejectedPhoto, extract_photo
from beam_jobs.pipeline.detect import (
    LoadedFamilies,
    ModelFailure,
    PhotoDetections,
    acquire_families,
    detect_photo,
    rgb_pixels,
    set_model_threads,
)
from beam_jobs.pipeline.manifests import InvalidManifest, PendingPhoto, parse_manifest
from beam_jobs.pipeline.settings import METRICS_NAMESPACE as NAMESPACE
from beam_jobs.records import MODEL_FAILED, DeadLetter, Detection, PhotoFacts, PhotoRecord
from infra.storage.client import build_client
from infra.storage.config import S3Settings
from infra.storage.objects import is_missing, read_bytes, store_bytes


@dataclass(frozen=True, slots=True)
class Evidence:
    pending: PendingPhoto
    data: bytes


@dataclass(frozen=True, slots=True)
class Analysed:
    """One photo's facts, thumbnail and detections (each with its crop's JPEG), nothing written yet."""

    pending: PendingPhoto
    facts: PhotoFacts
    thumbnail: bytes
    detections: tuple[tuple[Detection, bytes], ...]


@dataclass(frozen=True, slots=True)
class Extracted:
    """A photo record and its detection records, thumbnail and crops written (the original's bytes are dropped)."""

    record: PhotoRecord
    detections: tuple[Detection, ...]


def thumbnail_key(photo_id: str) -> str:
    return f"thumbnails/{photo_id}.jpg"


def dead_letter(*, object_key: str, manifest_key: str, sha256: str | None, reason: str, detail: str,
                run_id: str) -> DeadLetter:
    Metrics.counter(NAMESPACE, f"rejected.{reason}").inc()
    Metrics.counter(NAMESPACE, "rejected").inc()
    return DeadLetter(object_key=object_key, sha256=sha256, reason=reason, detail=detail, run_id=run_id,
                      manifest_key=manifest_key)


def model_failed(failure: ModelFailure, pending: PendingPhoto, sha256: str, *, run_id: str) -> DeadLetter:
    """The dead letter of a family that raised on a photo whose photo row IS written (see `MODEL_FAILED`).

    Not `dead_letter()`: the photo is not rejected, so "rejected" must not count it. Its manifest key lets
    erasure find the row and `--retry-failed` the manifest to extract again.
    """
    Metrics.counter(NAMESPACE, MODEL_FAILED).inc()
    Metrics.counter(NAMESPACE, f"{MODEL_FAILED}.{failure.family}").inc()
    return DeadLetter(object_key=pending.object_key, sha256=sha256, reason=MODEL_FAILED,
                      detail=f"{failure.family} {failure.version}: {failure.error}", run_id=run_id,
                      manifest_key=pending.manifest_key)


def check_original(pending: PendingPhoto, data: bytes) -> str | None:
    """None when the bytes are the ones the manifest names, else why not."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != pending.sha256:
        return f"{pending.object_key} hashes to {actual}; manifest {pending.manifest_key} says {pending.sha256}"
    return None


def facts_with_position_source(facts: PhotoFacts, pending: PendingPhoto) -> PhotoFacts:
    """`extract_photo` calls any upload position "device"; a witness-placed pin says "pin"."""
    if facts.position_source == "device" and pending.device_position_source == "pin":
        return dataclasses.replace(facts, position_source="pin")
    return facts


class _S3DoFn(beam.DoFn):
    def __init__(self, s3: S3Settings, run_id: str) -> None:
        super().__init__()
        self.s3 = s3
        self.run_id = run_id
        self.client: Minio | None = None

    def setup(self) -> None:
        self.client = build_client(self.s3)

    def _client(self) -> Minio:
        if self.client is None:  # setup() not called: a runner bug, not bad input
            raise RuntimeError(f"{type(self).__name__}.setup() was not called")
        return self.client


class ReadEvidence(_S3DoFn):
    """Manifest key -> `Evidence` (parsed manifest + verified original bytes) or `DeadLetter`."""

    def process(self, manifest_key: str) -> Iterator[Evidence | DeadLetter]:
        client, bucket = self._client(), self.s3.buckets.evidence
        started = time.perf_counter()
        try:
            pending = parse_manifest(manifest_key, read_bytes(client, bucket, manifest_key))
        except InvalidManifest as error:
            yield dead_letter(object_key=manifest_key, manifest_key=manifest_key, sha256=None,
                              reason="manifest_invalid", detail=str(error), run_id=self.run_id)
            return
        try:
            data = read_bytes(client, bucket, pending.object_key, pending.object_version)
        except S3Error as error:
            if not is_missing(error):
                raise  # the store is failing, not the input: let the runner retry or fail the run
            yield dead_letter(object_key=pending.object_key, manifest_key=manifest_key, sha256=pending.sha256,
                              reason="original_missing", detail=str(error.code), run_id=self.run_id)
            return
        problem = check_original(pending, data)
        if problem is not None:
            yield dead_letter(object_key=pending.object_key, manifest_key=manifest_key, sha256=pending.sha256,
                              reason="sha256_mismatch", detail=problem, run_id=self.run_id)
            return
        Metrics.counter(NAMESPACE, "bytes").inc(len(data))
        Metrics.distribution(NAMESPACE, "read_ms").update(int((time.perf_counter() - started) * 1000))
        yield Evidence(pending, data)


class AnalysePhoto(beam.DoFn):
    """`Evidence` -> `Analysed` (facts, thumbnail, detections from ONE decode) or a `DeadLetter` with its reason.

    A model family that raises on the photo does not lose it: the `Analysed` goes on without that family's
    detections, followed by a `model_failed` dead letter per failed family (`detect.detect_photo`).

    Fused on purpose: the model stage as its own DoFn decoded every original a second time (47 ms per photo in
    process, 106-199 ms on Dask, measured in docs/BENCHMARKS.md), and handing the pixels to a next DoFn would
    pickle up to 60 MB per photo between workers on cluster runners.
    """

    def __init__(self, *, max_pixels: int, thumbnail_max_side: int, run_id: str, families: Sequence[str] = (),
                 models_dir: str = "", crop_max_side: int = 512, model_threads: int | None = None) -> None:
        super().__init__()
        self.max_pixels, self.thumbnail_max_side, self.run_id = max_pixels, thumbnail_max_side, run_id
        self.families, self.models_dir, self.crop_max_side = tuple(families), models_dir, crop_max_side
        self.model_threads = model_threads
        self._shared = Shared()
        self.loaded: LoadedFamilies | None = None

    def setup(self) -> None:
        if self.families and self.model_threads is not None:
            set_model_threads(self.model_threads)
        if self.families:
            self.loaded = acquire_families(self._shared, self.families, Path(self.models_dir))

    def process(self, element: Evidence | DeadLetter) -> Iterator[Analysed | DeadLetter]:
        if isinstance(element, DeadLetter):
            yield element
            return
        pending, started = element.pending, time.perf_counter()
        try:
            photo = extract_photo(
                element.data,
                object_key=pending.object_key,
                event_id=pending.event_id,
                submission_id=pending.submission_id,
                uploaded_at_utc=pending.received_at,
                device_position=pending.device_position,
                max_pixels=self.max_pixels,
                thumbnail_max_side=self.thumbnail_max_side,
            )
        except RejectedPhoto as rejected:
            yield dead_letter(object_key=pending.object_key, manifest_key=pending.manifest_key,
                              sha256=rejected.sha256 or pending.sha256, reason=rejected.reason,
                              detail=rejected.detail, run_id=self.run_id)
            return
        Metrics.distribution(NAMESPACE, "extract_ms").update(int((time.perf_counter() - started) * 1000))
        facts = facts_with_position_source(photo.facts, pending)
        detections = self._detections(photo.image, facts.photo_id)
        yield Analysed(pending, facts, photo.thumbnail, detections.found)
        for failure in detections.failures:
            yield model_failed(failure, pending, facts.sha256, run_id=self.run_id)

    def _detections(self, image: Image.Image, photo_id: str) -> PhotoDetections:
        if not self.families:
            return PhotoDetections((), ())
        if self.loaded is None:  # setup() not called: a runner bug, not bad input
            raise RuntimeError("AnalysePhoto.setup() was not called")
        started = time.perf_counter()
        found = detect_photo(self.loaded.families, rgb_pixels(image), photo_id=photo_id,
                             crop_max_side=self.crop_max_side)
        Metrics.distribution(NAMESPACE, "detect_ms").update(int((time.perf_counter() - started) * 1000))
        return found


class WriteDerived(_S3DoFn):
    """`Analysed` -> thumbnail and crops in the derived bucket -> `Extracted` (photo record + detections)."""

    def __init__(self, s3: S3Settings, run_id: str, *, extracted_by: str) -> None:
        super().__init__(s3, run_id)
        self.extracted_by = extracted_by

    def process(self, element: Analysed | DeadLetter) -> Iterator[Extracted | DeadLetter]:
        if isinstance(element, DeadLetter):
            yield element
            return
        client, bucket, started = self._client(), self.s3.buckets.derived, time.perf_counter()
        key = thumbnail_key(element.facts.photo_id)
        store_bytes(client, bucket, key, element.thumbnail, "image/jpeg")
        for detection, crop in element.detections:
            if detection.crop_key is not None:
                store_bytes(client, bucket, detection.crop_key, crop, "image/jpeg")
            Metrics.counter(NAMESPACE, f"detections.{detection.kind}").inc()
        Metrics.distribution(NAMESPACE, "write_derived_ms").update(int((time.perf_counter() - started) * 1000))
        Metrics.counter(NAMESPACE, "photos").inc()
        record = PhotoRecord(element.facts, thumbnail_key=key, extracted_by=self.extracted_by, run_id=self.run_id)
        yield Extracted(record, tuple(detection for detection, _ in element.detections))


class ExtractPhotos(beam.PTransform):
    """Manifest keys -> `Extracted | DeadLetter`: one `Extracted` or refusing `DeadLetter` per manifest, always,
    plus a `model_failed` dead letter per model family that raised on an extracted photo.
    """

    def __init__(self, *, s3: S3Settings, run_id: str, max_pixels: int, thumbnail_max_side: int, extracted_by: str,
                 families: Sequence[str] = (), models_dir: str = "", crop_max_side: int = 512,
                 model_threads: int | None = None) -> None:
        super().__init__()
        self.s3, self.run_id, self.extracted_by = s3, run_id, extracted_by
        self.analyse = AnalysePhoto(max_pixels=max_pixels, thumbnail_max_side=thumbnail_max_side, run_id=run_id,
                                    families=families, models_dir=models_dir, crop_max_side=crop_max_side,
                                    model_threads=model_threads)

    def expand(self, manifest_keys: Any) -> Any:
        return (
            manifest_keys
            | "ReadEvidence" >> beam.ParDo(ReadEvidence(self.s3, self.run_id))
            | "AnalysePhoto" >> beam.ParDo(self.analyse)
            | "WriteDerived" >> beam.ParDo(WriteDerived(self.s3, self.run_id, extracted_by=self.extracted_by))
        )
