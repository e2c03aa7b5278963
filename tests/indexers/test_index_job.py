"""The index builder's local housekeeping: what a killed build leaves on disk is removed, a live one is not."""

from __future__ import annotations

import os
import time
from pathlib import Path

from indexers.index_job import STALE_BUILD_S, remove_stale_builds


def _build_folder(root: Path, name: str, age_s: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "index.faiss").write_bytes(b"half written")
    moment = time.time() - age_s
    os.utime(folder, (moment, moment))
    return folder


def test_build_folders_older_than_a_day_are_removed_and_younger_ones_kept(tmp_path: Path) -> None:
    killed = _build_folder(tmp_path, "v-killed-yesterday", STALE_BUILD_S + 60)
    running = _build_folder(tmp_path, "v-another-builder-now", 5)
    assert remove_stale_builds(tmp_path) == [killed]
    assert not killed.exists() and (running / "index.faiss").is_file()


def test_a_kind_never_built_has_nothing_to_remove(tmp_path: Path) -> None:
    assert remove_stale_builds(tmp_path / "face") == []
