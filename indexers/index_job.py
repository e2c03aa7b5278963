"""`witness index`: bring every kind's published index up to date with the committed extraction runs.

    outcomes = index_catalog(client, "catalog", kinds=INDEX_KINDS, work_dir=Path(".witness/index-build"),
                             cache_root=Path(".witness/index-cache"), withdrawn_submission_ids={"sub-1"})

For each kind: no published version (or `rebuild=True`) -> a full build from every committed run;
otherwise only the runs the served version lacks are read and added, and photos of withdrawn
submissions are removed. A kind with nothing new is left alone. Each new version is written locally,
uploaded and then pointed to (`indexers.s3_versions`). Runs are read the way
`beam_jobs.pipeline.catalog.read_committed` reads them (sha256 of each part checked against the run's
`_SUCCESS.json`; newest run wins for a repeated id), but only the runs asked for.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
from minio import Minio

from beam_jobs.pipeline.catalog import load_state, read_committed
from indexers.catalog_index import (
    INDEX_KINDS,
    KindIndex,
    NothingToIndexError,
    build_kind_index,
    update_kind_index,
    withdrawn_photo_ids,
)
from indexers.s3_versions import load_published, new_version_name, publish_version, read_pointer, write_local
from indexers.vector_index import IndexParams


@dataclass(frozen=True)
class IndexOutcome:
    kind: str
    action: str  # "built", "updated", "unchanged", "empty"
    version: str | None
    count: int
    added_runs: tuple[str, ...] = ()
    removed_photos: int = 0


class _Records:
    """Each run set's tables read at most once per `index_catalog` call."""

    def __init__(self, client: Minio, bucket: str) -> None:
        self.client, self.bucket = client, bucket
        self._cache: dict[tuple[tuple[str, ...], str], pa.Table] = {}

    def get(self, run_ids: Sequence[str], table: str) -> pa.Table:
        key = (tuple(run_ids), table)
        if key not in self._cache:
            self._cache[key] = read_committed(self.client, self.bucket, table, run_ids)
        return self._cache[key]


def _next(kind: str, base: KindIndex | None, records: _Records, runs: tuple[str, ...],
          withdrawn_submissions: Collection[str], params: IndexParams | None
          ) -> tuple[KindIndex | None, str, tuple[str, ...], int]:
    """(new state or None if unchanged, action, runs added, photos removed)."""
    if base is None:
        photos = records.get(runs, "photos")
        gone = withdrawn_photo_ids(photos, withdrawn_submissions)
        built = build_kind_index(kind, records.get(runs, "detections"), photos, run_ids=runs,
                                 withdrawn_photo_ids=gone, params=params)
        return built, "built", runs, 0
    new_runs = tuple(run for run in runs if run not in base.run_ids)
    photos = records.get(new_runs, "photos")
    gone = withdrawn_photo_ids(base.details, withdrawn_submissions) | withdrawn_photo_ids(photos,
                                                                                        withdrawn_submissions)
    present = len(gone & set(base.meta.photo_id.tolist()))
    if not new_runs and not present:
        return None, "unchanged", (), 0
    updated = update_kind_index(base, records.get(new_runs, "detections"), photos, new_run_ids=new_runs,
                                withdrawn_photo_ids=gone)
    return updated, "updated", new_runs, present


STALE_BUILD_S = 24 * 3600


def remove_stale_builds(kind_dir: Path, *, older_than_s: float = STALE_BUILD_S, now: float | None = None) -> list[Path]:
    """Delete local build folders a killed builder left behind (a day old: never a concurrent builder's)."""
    cutoff = (time.time() if now is None else now) - older_than_s
    stale = [item for item in kind_dir.glob("*") if item.is_dir() and item.stat().st_mtime < cutoff]
    for item in stale:
        shutil.rmtree(item, ignore_errors=True)
    return stale


def index_catalog(client: Minio, bucket: str, *, kinds: Sequence[str] = INDEX_KINDS, work_dir: Path,
                  cache_root: Path, withdrawn_submission_ids: Collection[str] = (), rebuild: bool = False,
                  params: IndexParams | None = None) -> list[IndexOutcome]:
    """Publish a new version of each kind in `kinds` that the committed runs or withdrawals changed."""
    runs = load_state(client, bucket).runs
    records = _Records(client, bucket)
    outcomes = []
    for kind in kinds:
        published = None if rebuild else load_published(client, bucket, kind, cache_root)
        base = published[1] if published else None
        try:
            state, action, added, removed = _next(kind, base, records, runs, withdrawn_submission_ids, params)
        except NothingToIndexError:
            outcomes.append(IndexOutcome(kind, "empty", None, 0))  # nothing of this kind extracted yet
            continue
        if state is None:
            assert published is not None
            outcomes.append(IndexOutcome(kind, action, published[0].version, len(published[1].meta)))
            continue
        version = new_version_name()
        remove_stale_builds(work_dir / kind)
        path = work_dir / kind / version
        try:
            write_local(work_dir / kind, version, state)
            previous = published[0].version if published else None
            if rebuild:
                current = read_pointer(client, bucket, kind)
                previous = current.version if current else None
            publish_version(client, bucket, path, expect_previous=previous)
        finally:
            # The search service verifies its own download; this copy served its purpose (or failed).
            shutil.rmtree(path, ignore_errors=True)
        outcomes.append(IndexOutcome(kind, action, version, len(state.meta), added, removed))
    return outcomes
