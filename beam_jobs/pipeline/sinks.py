"""Parquet part writers: (table, record) pairs -> `<run prefix>/<table>-SSSSS.parquet` in the catalog bucket.

Records are keyed by their table and a stable hash of their id into at most `num_shards` shards, grouped
(ONE GroupByKey for every table), sorted by id, written with pyarrow to bytes and put through the minio
client, then verified. Our own step rather than WriteToParquet: Beam's file sinks finish empty on the
DaskRunner, and writing through S3 keeps cluster runners free of local paths. Same inputs give
byte-identical parts on every runner.

Why one GroupByKey for all tables: the DaskRunner turns each into a task shuffle of about partitions²
tasks; three of them were 900 of the 1,057 tasks of a 16-partition run (docs/BENCHMARKS.md, Extraction).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from beam_jobs.records import DeadLetter, Detection, PhotoRecord, dead_letters_table, detections_table, photos_table
from infra.storage.client import build_client
from infra.storage.config import S3Settings
from infra.storage.objects import store_bytes

PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True, slots=True)
class PartInfo:
    table: str
    key: str
    rows: int
    sha256: str


def part_key(run_prefix: str, table: str, shard: int) -> str:
    return f"{run_prefix}{table}-{shard:05d}.parquet"


def shard_of(record_id: str, num_shards: int) -> int:
    """Stable across processes and runners (unlike `hash()`, which is salted per process)."""
    return int.from_bytes(hashlib.sha256(record_id.encode()).digest()[:8], "big") % num_shards


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def photo_id(record: PhotoRecord) -> str:
    return record.facts.photo_id


def dead_letter_id(record: DeadLetter) -> str:
    # The manifest too: one original named by two submissions' manifests fails once per manifest.
    return f"{record.manifest_key}\x00{record.object_key}\x00{record.reason}\x00{record.detail}"


def detection_id(record: Detection) -> str:
    return record.detection_id


@dataclass(frozen=True)
class TableSpec:
    """How one table's records are identified and turned into Arrow."""

    name: str
    record_id: Callable[[Any], str]
    to_table: Callable[[Sequence[Any]], pa.Table]


PHOTOS = TableSpec("photos", photo_id, photos_table)
DEAD_LETTERS = TableSpec("dead_letters", dead_letter_id, dead_letters_table)
DETECTIONS = TableSpec("detections", detection_id, detections_table)
TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (PHOTOS, DEAD_LETTERS, DETECTIONS)}

PartId = tuple[str, int]  # (table name, shard)


def part_id_of(table: str, record: Any, num_shards: int) -> PartId:
    """The part a record of `table` goes to; raises KeyError naming an unknown table."""
    return table, shard_of(TABLES[table].record_id(record), num_shards)


class WritePart(beam.DoFn):
    """((table, shard), records) -> one verified Parquet part -> `PartInfo`."""

    def __init__(self, s3: S3Settings, run_prefix: str) -> None:
        super().__init__()
        self.s3, self.run_prefix = s3, run_prefix
        self.client: Any = None

    def setup(self) -> None:
        self.client = build_client(self.s3)

    def process(self, element: tuple[PartId, Iterable[Any]]) -> Iterator[PartInfo]:
        (table, shard), records = element
        spec = TABLES[table]
        ordered = sorted(records, key=spec.record_id)
        key = part_key(self.run_prefix, spec.name, shard)
        digest = store_bytes(
            self.client, self.s3.buckets.catalog, key, parquet_bytes(spec.to_table(ordered)), PARQUET_TYPE
        ).sha256
        yield PartInfo(spec.name, key, len(ordered), digest)


class WriteParts(beam.PTransform):
    """(table name, record) pairs -> Parquet parts under `run_prefix`; one `PartInfo` per part written.

    A table with no records gets no part.
    """

    def __init__(self, *, s3: S3Settings, run_prefix: str, num_shards: int) -> None:
        super().__init__()
        self.s3, self.run_prefix, self.num_shards = s3, run_prefix, num_shards

    def expand(self, table_records: Any) -> Any:
        num_shards = self.num_shards
        return (
            table_records
            | "Shard" >> beam.MapTuple(lambda table, record: (part_id_of(table, record, num_shards), record))
            | "Group" >> beam.GroupByKey()
            | "Write" >> beam.ParDo(WritePart(self.s3, self.run_prefix))
        )
