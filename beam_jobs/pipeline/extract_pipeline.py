"""`build_pipeline`: the extraction job's graph, independent of the runner.

    manifest keys -> ExtractPhotos (read, decode once: facts + thumbnail + detections, write derived)
                  -> photos / dead letters (/ detections) -> Parquet parts per table -> Flatten -> "Done"

Everything ends in ONE last transform that depends on every sink: Beam 2.77's DaskRunner computes only
the last transform's lineage, so a sink on a side branch would silently never run there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam

from beam_jobs.pipeline.catalog import run_prefix
from beam_jobs.pipeline.sinks import DEAD_LETTERS, DETECTIONS, PHOTOS, PartInfo, WriteParts
from beam_jobs.pipeline.transforms import Extracted, ExtractPhotos, only
from beam_jobs.records import DeadLetter, Detection, PhotoRecord
from infra.storage.config import S3Settings


@dataclass(frozen=True)
class JobConfig:
    """Plain values the graph needs (from `ExtractSettings` plus the run id)."""

    s3: S3Settings
    run_id: str
    extracted_by: str
    max_pixels: int
    thumbnail_max_side: int
    crop_max_side: int
    num_shards: int
    families: tuple[str, ...]
    models_dir: Path
    model_threads: int | None = None


def record_of(extracted: Extracted) -> PhotoRecord:
    return extracted.record


def detections_of(element: object) -> tuple[Detection, ...]:
    return element.detections if isinstance(element, Extracted) else ()


def part_key_of(part: PartInfo) -> str:
    return part.key


def build_pipeline(pipeline: beam.Pipeline, manifest_keys: Sequence[str], config: JobConfig) -> beam.PCollection:
    """Add the job to `pipeline`; returns the PCollection of written part keys (the last transform)."""
    prefix = run_prefix(config.run_id)
    results = (
        pipeline
        | "Manifests" >> beam.Create(sorted(manifest_keys))
        | "ExtractPhotos" >> ExtractPhotos(
            s3=config.s3, run_id=config.run_id, max_pixels=config.max_pixels,
            thumbnail_max_side=config.thumbnail_max_side, extracted_by=config.extracted_by,
            families=config.families, models_dir=str(config.models_dir), crop_max_side=config.crop_max_side,
            model_threads=config.model_threads)
    )
    photos = results | "OnlyPhotos" >> beam.FlatMap(only(Extracted)) | "Records" >> beam.Map(record_of)
    dead = results | "OnlyDeadLetters" >> beam.FlatMap(only(DeadLetter))
    parts = [
        photos | "WritePhotos" >> WriteParts(s3=config.s3, spec=PHOTOS, run_prefix=prefix,
                                             num_shards=config.num_shards),
        dead | "WriteDeadLetters" >> WriteParts(s3=config.s3, spec=DEAD_LETTERS, run_prefix=prefix,
                                                num_shards=config.num_shards),
    ]
    if config.families:
        detections = results | "Detections" >> beam.FlatMap(detections_of)
        parts.append(detections | "WriteDetections" >> WriteParts(
            s3=config.s3, spec=DETECTIONS, run_prefix=prefix, num_shards=config.num_shards))
    written: beam.PCollection = tuple(parts) | "AllParts" >> beam.Flatten() | "Done" >> beam.Map(part_key_of)
    return written
