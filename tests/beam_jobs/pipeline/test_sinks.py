"""Parquet parts: stable sharding, readable bytes, part names."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from beam_jobs.pipeline.sinks import parquet_bytes, part_id_of, part_key, shard_of
from beam_jobs.records import DEAD_LETTER_SCHEMA, DeadLetter, dead_letters_table


def test_shards_are_stable_and_in_range() -> None:
    ids = [f"photo-{i}" for i in range(200)]
    shards = [shard_of(i, 4) for i in ids]
    assert set(shards) == {0, 1, 2, 3}
    assert shards == [shard_of(i, 4) for i in ids]
    assert shard_of("photo-0", 4) == 0  # fixed across processes and runners (sha256, not hash())


def test_part_key() -> None:
    assert part_key("extract/runs/r1/", "photos", 3) == "extract/runs/r1/photos-00003.parquet"


def test_parquet_bytes_round_trip() -> None:
    rows = [DeadLetter(object_key="k", sha256=None, reason="truncated", detail="cut", run_id="r1", manifest_key="m")]
    table = pq.read_table(io.BytesIO(parquet_bytes(dead_letters_table(rows))))
    assert table.schema.equals(DEAD_LETTER_SCHEMA)
    assert table.to_pylist() == [rows[0].to_row()]


def test_part_id_shards_each_table_by_its_own_record_id() -> None:
    letter = DeadLetter(object_key="k", sha256=None, reason="truncated", detail="cut", run_id="r1", manifest_key="m")
    assert part_id_of("dead_letters", letter, 4) == ("dead_letters", shard_of("m\x00k\x00truncated\x00cut", 4))
    with pytest.raises(KeyError, match="thumbnails"):
        part_id_of("thumbnails", letter, 4)
