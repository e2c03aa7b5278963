"""Index versions on disk: roundtrip, hash verification, and crashes that must not corrupt what is served."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

from indexers import storage_format
from indexers.metadata import MetadataTable
from indexers.storage_format import (
    CorruptVersionError,
    load_current,
    load_version,
    publish,
    save_version,
    verify,
)
from indexers.vector_index import IndexParams, IndexType, VectorIndex

RecordFactory = Callable[..., tuple[pa.Table, pa.Table]]
VectorFactory = Callable[..., NDArray[np.float32]]


@pytest.fixture
def version(records: RecordFactory, unit_vectors: VectorFactory) -> tuple[VectorIndex, MetadataTable]:
    rng = np.random.default_rng(3)
    det, photos = records(rng.uniform(-1, 1, 500).tolist(), rng.uniform(-1, 1, 500).tolist())
    meta = MetadataTable.from_records(det, photos)
    index = VectorIndex.build("face", meta.ids, unit_vectors(500, 16, seed=3), index_type=IndexType.HNSW,
                              params=IndexParams(hnsw_m=8, max_tombstone_fraction=0.5))
    index.remove(meta.ids[:5])
    return index, meta


def test_roundtrip_keeps_results_ids_and_tombstones(tmp_path: Path, unit_vectors: VectorFactory,
                                                    version: tuple[VectorIndex, MetadataTable]) -> None:
    index, meta = version
    path = save_version(tmp_path, "v1", index, meta, source_run_ids=["run-a", "run-b"])
    loaded, loaded_meta, manifest = load_version(path)
    assert manifest["kind"] == "face" and manifest["dim"] == 16 and manifest["count"] == 495
    assert manifest["index_type"] == "hnsw" and manifest["source_run_ids"] == ["run-a", "run-b"]
    assert loaded.params == index.params
    np.testing.assert_array_equal(loaded.tombstones, index.tombstones)
    np.testing.assert_array_equal(loaded_meta.ids, meta.ids)
    queries = unit_vectors(20, 16, seed=4)
    for got, want in zip(loaded.search(queries, 5), index.search(queries, 5), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(FileExistsError, match="immutable"):
        save_version(tmp_path, "v1", index, meta, source_run_ids=[])


@pytest.mark.parametrize("target", ["index.faiss", "metadata.parquet", "tombstones.npy", "manifest.json"])
def test_corrupted_or_missing_file_is_refused(tmp_path: Path, target: str,
                                              version: tuple[VectorIndex, MetadataTable]) -> None:
    path = save_version(tmp_path, "v1", *version, source_run_ids=[])
    data = bytearray((path / target).read_bytes())
    data[len(data) // 2] ^= 0x01
    (path / target).write_bytes(bytes(data))
    with pytest.raises(CorruptVersionError):
        load_version(path)
    (path / target).unlink()
    with pytest.raises(CorruptVersionError):
        verify(path)


@pytest.mark.parametrize("failing_replace", [1, 4, 5])  # first file, manifest, the directory rename
def test_crash_mid_write_leaves_previous_version_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        failing_replace: int,
                                                        version: tuple[VectorIndex, MetadataTable]) -> None:
    index, meta = version
    save_version(tmp_path, "v1", index, meta, source_run_ids=["run-a"])
    publish(tmp_path, "v1")
    calls = 0
    real_replace = os.replace

    def crashing_replace(src: str | Path, dst: str | Path) -> None:
        nonlocal calls
        calls += 1
        if calls == failing_replace:
            raise OSError("simulated crash: disk gone")
        real_replace(src, dst)

    monkeypatch.setattr(storage_format.os, "replace", crashing_replace)
    index.remove(meta.ids[5:10])
    with pytest.raises(OSError, match="simulated crash"):
        save_version(tmp_path, "v2", index, meta, source_run_ids=["run-b"])
    monkeypatch.undo()
    assert not (tmp_path / "v2").exists()
    with pytest.raises(CorruptVersionError):
        verify(tmp_path / "v2")
    served, _, manifest = load_current(tmp_path)
    assert manifest["version"] == "v1" and len(served) == 495
    # The same version name can be written once the crash is over.
    save_version(tmp_path, "v2", index, meta, source_run_ids=["run-b"])
    publish(tmp_path, "v2")
    assert len(load_current(tmp_path)[0]) == 490


def test_half_written_directory_cannot_be_published(tmp_path: Path,
                                                   version: tuple[VectorIndex, MetadataTable]) -> None:
    path = save_version(tmp_path, "v1", *version, source_run_ids=[])
    (path / "manifest.json").unlink()
    with pytest.raises(CorruptVersionError, match="manifest missing"):
        publish(tmp_path, "v1")
    assert not (tmp_path / "CURRENT").exists()
    with pytest.raises(ValueError, match="version name"):
        save_version(tmp_path, "../escape", *version, source_run_ids=[])
