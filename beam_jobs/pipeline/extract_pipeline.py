"""`build_pipeline`: the extraction job's graph, independent of the runner.

    manifest keys -> ExtractPhotos (read, decode once: facts + thumbnail + detections, write derived)
                  -> (table, row) for photos, dead letters and detections -> Parquet parts -> "Done"

One chain, no side branches: Beam 2.77's DaskRunner computes only the last transform's lineage, so a sink
on a side branch would silently never run there. The three tables share one GroupByKey (`WriteParts`):
on Dask each GroupByKey is a task shuffle of about partitions² tasks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import apache_beam as beam

from beam_jobs.pipeline.catalog import run_prefix
from beam_jobs.pipeline.sinks import DEAD_LETTERS, DETECTIONS, PHOTOS, PartInfo, WriteParts
from beam_jobs.pipeline.transforms import Extracted, ExtractPhotos
from beam_jobs.records import DeadLetter
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


def table_rows(element: Extracted | DeadLetter) -> Iterator[tuple[str, object]]:
    """(table name, record) for each row an `ExtractPhotos` output becomes: photo + detections, or dead letter."""
    if isinstance(element, Extracted):
        yield PHOTOS.name, element.record
        for detection in element.detections:
            yield DETECTIONS.name, detection
    elif isinstance(element, DeadLetter):
        yield DEAD_LETTERS.name, element
    else:  # a new ExtractPhotos output type must be given a table, not dropped
        raise TypeError(f"ExtractPhotos emitted a {type(element).__name__}, which has no table")


def part_key_of(part: PartInfo) -> str:
    return part.key


def build_pipeline(pipeline: beam.Pipeline, manifest_keys: Sequence[str], config: JobConfig) -> beam.PCollection:
    """Add the job to `pipeline`; returns the PCollection of written part keys (the last transform)."""
    written: beam.PCollection = (
        pipeline
        | "Manifests" >> beam.Create(sorted(manifest_keys))
        | "ExtractPhotos" >> ExtractPhotos(
            s3=config.s3, run_id=config.run_id, max_pixels=config.max_pixels,
            thumbnail_max_side=config.thumbnail_max_side, extracted_by=config.extracted_by,
            families=config.families, models_dir=str(config.models_dir), crop_max_side=config.crop_max_side,
            model_threads=config.model_threads)
        | "TableRows" >> beam.FlatMap(table_rows)
        | "WriteParts" >> WriteParts(s3=config.s3, run_prefix=run_prefix(config.run_id), num_shards=config.num_shards)
        | "Done" >> beam.Map(part_key_of)
    )
    return written
