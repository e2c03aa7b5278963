"""Investigator search over the published indexes: hot-swapped versions, fenced queries, presigned images.

    service = SearchService(client=client, catalog_bucket="catalog", derived_bucket="derived",
                            cache_dir=state_dir / "index-cache", presign_expiry=timedelta(minutes=15))
    service.refresh()                                    # load what `indexes/<kind>/CURRENT.json` names
    outcome = service.plates("RK-878*", fence=fence, limit=20, context=SearchContext(case_id="C-1"))
    audit_log.append(outcome.audit_record())             # issue 7: who searched what, and what they saw

Hot swap: every query takes one reference to the immutable snapshot (kind -> version, index) at its
start and uses only that; `refresh` builds the next snapshot off to the side (download, verify, load,
warm the lazy lookups) and replaces the reference in one assignment. A query therefore sees one whole
version, never a mix, and a version that fails verification is never installed (the old one stays).

Images returned are the extraction job's EXIF-free crops and thumbnails in the `derived` bucket, as
presigned GET URLs; originals are never linked from search. Governance (who may search, for which
case) is decided by the caller, which passes a `SearchContext` and logs `SearchOutcome.audit_record()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from minio import Minio
from minio.error import S3Error
from numpy.typing import NDArray
from urllib3.exceptions import HTTPError

from indexers.catalog_index import INDEX_KINDS, KindIndex
from indexers.fence import Fence
from indexers.plates import PlateQueryError, plate_texts, search_plates, vehicle_mask
from indexers.prune import prune_local
from indexers.s3_versions import fetch_version, read_local, read_pointer
from indexers.search import fenced_search
from indexers.storage_format import CorruptVersionError
from infra.storage.config import S3Settings
from ingest_api.services.query_images import QueryEmbedder, UnusableQueryImage

log = logging.getLogger(__name__)
#: How often the API looks for a newly published index version (one small GET per kind).
REFRESH_INTERVAL_S = 30.0
INDEX_CACHE_DIR = "index-cache"


class SearchUnavailable(RuntimeError):
    """No index of the asked kind is being served (nothing published yet, or it failed verification)."""


class SearchQueryError(ValueError):
    """The query cannot be answered as asked; the message says why (HTTP 422)."""


class UnknownDetection(LookupError):
    """No served index holds that detection id (HTTP 404)."""


@dataclass(frozen=True)
class SearchContext:
    """Why a search is made, carried into the audit record; checking it is the caller's job (issue 7)."""

    case_id: str | None = None
    legal_basis: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True)
class Hit:
    query_index: int
    rank: int
    score: float
    kind: str
    detection_id: str
    photo_id: str
    event_id: str | None
    box: tuple[float, float, float, float] | None
    lat: float | None
    lon: float | None
    position_trusted: bool
    taken_at_utc: datetime | None
    time_trusted: bool
    place_name: str | None
    attributes: dict[str, Any]
    crop_url: str | None
    thumbnail_url: str | None
    photo_width: int | None = None
    photo_height: int | None = None
    photo_sha256: str | None = None
    phash: str | None = None
    position_source: str | None = None
    time_source: str | None = None


_PHOTO_DETAILS = ("photo_width", "photo_height", "photo_sha256", "phash", "position_source", "time_source")


@dataclass(frozen=True)
class SearchOutcome:
    query: str
    kind: str
    index_version: str
    context: SearchContext
    fence: Fence
    hits: list[Hit]
    exact: bool = True
    candidates: int = 0
    queries: int = 1

    def audit_record(self) -> dict[str, Any]:
        """JSON-ready: the context, the query, the version searched and every result id shown."""
        return {**asdict(self.context), "query": self.query, "kind": self.kind, "index_version": self.index_version,
                "fence": _fence_json(self.fence), "detection_ids": [h.detection_id for h in self.hits],
                "photo_ids": sorted({h.photo_id for h in self.hits})}


def _fence_json(fence: Fence) -> dict[str, Any]:
    area = fence.area
    window = fence.window
    return {"area": None if area is None else {type(area).__name__.lower(): {
                k: v for k, v in vars(area).items() if not k.startswith("_")}},
            "start": window.start.isoformat() if window else None, "end": window.end.isoformat() if window else None,
            "include_unplaced": fence.include_unplaced, "include_untimed": fence.include_untimed}


@dataclass(frozen=True)
class Served:
    version: str
    data: KindIndex


@dataclass
class SearchService:
    client: Minio
    catalog_bucket: str
    derived_bucket: str
    cache_dir: Path
    presign_expiry: timedelta
    embedder: QueryEmbedder = field(default_factory=QueryEmbedder)
    kinds: tuple[str, ...] = INDEX_KINDS
    _snapshot: Mapping[str, Served] = field(default_factory=lambda: MappingProxyType({}))
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_settings(cls, s3: S3Settings, *, client: Minio, state_dir: Path) -> SearchService:
        return cls(client=client, catalog_bucket=s3.buckets.catalog, derived_bucket=s3.buckets.derived,
                   cache_dir=state_dir / INDEX_CACHE_DIR, presign_expiry=timedelta(seconds=s3.presign_expiry_s))

    @property
    def versions(self) -> dict[str, str]:
        return {kind: served.version for kind, served in self._snapshot.items()}

    def install(self, kind: str, version: str, data: KindIndex) -> None:
        """Serve `data` as `kind` from now on (atomic: one reference assignment)."""
        with self._refresh_lock:
            self._snapshot = MappingProxyType({**self._snapshot, kind: Served(version, data.warm())})

    def refresh(self) -> dict[str, str]:
        """Load every kind whose pointer moved; a kind that fails keeps its old version. Returns versions."""
        with self._refresh_lock:
            current = dict(self._snapshot)
            for kind in self.kinds:
                try:
                    pointer = read_pointer(self.client, self.catalog_bucket, kind)
                    if pointer is None or (kind in current and current[kind].version == pointer.version):
                        continue
                    path = fetch_version(self.client, self.catalog_bucket, pointer, self.cache_dir)
                    current[kind] = Served(pointer.version, read_local(path))
                    log.info("serving %s index version %s", kind, pointer.version)
                except (CorruptVersionError, S3Error, HTTPError, OSError) as error:
                    log.error("keeping %s index %s: new version unusable: %s", kind,
                              current[kind].version if kind in current else None, error)
            self._snapshot = MappingProxyType(current)
            self._drop_old_copies(current)
        return self.versions

    def _drop_old_copies(self, served: Mapping[str, Served]) -> None:
        """Delete cached versions other than the served ones: an erased photo's vectors must not linger on disk.
        The served versions are whole in memory (`read_local`), so this never disturbs a query."""
        for kind, current in served.items():
            try:
                prune_local(self.cache_dir, kind, keep={current.version})
            except OSError as error:  # a full or read-only disk must not stop the swap; the next refresh retries
                log.error("could not delete old cached %s index versions: %s", kind, error)

    async def refresh_forever(self, interval_s: float) -> None:
        """Background task for the API's lifespan: poll the pointers every `interval_s` seconds."""
        while True:
            await asyncio.to_thread(self.refresh)
            await asyncio.sleep(interval_s)

    def _served(self, kind: str) -> Served:
        served = self._snapshot.get(kind)
        if served is None:
            raise SearchUnavailable(f"no {kind} index is being served yet (run `witness index`)")
        return served

    def _url(self, key: str | None) -> str | None:
        if not key:
            return None
        return self.client.presigned_get_object(self.derived_bucket, key, expires=self.presign_expiry)

    def _hits(self, served: Served, rows: NDArray[np.int64], scores: NDArray[np.float64], query_index: int = 0
              ) -> list[Hit]:
        meta, details = served.data.meta, served.data.details
        out = []
        for rank, (row, score) in enumerate(zip(rows.tolist(), scores.tolist(), strict=True)):
            box = meta.box[row]
            detail = {name: details.column(name)[row].as_py()
                      for name in ("crop_key", "thumbnail_key", "place_name", *_PHOTO_DETAILS)}
            out.append(Hit(
                query_index=query_index, rank=rank, score=float(score), kind=str(meta.kind[row]),
                detection_id=str(meta.detection_id[row]), photo_id=str(meta.photo_id[row]),
                event_id=meta.event_id[row],
                box=None if np.isnan(box).any() else (float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                lat=None if np.isnan(meta.lat[row]) else float(meta.lat[row]),
                lon=None if np.isnan(meta.lon[row]) else float(meta.lon[row]),
                position_trusted=bool(meta.position_trusted[row]),
                taken_at_utc=datetime.fromtimestamp(int(meta.taken_at[row]), UTC) if meta.time_known[row] else None,
                time_trusted=bool(meta.time_trusted[row]), place_name=detail["place_name"],
                attributes=json.loads(meta.attributes[row]) if meta.attributes[row] else {},
                crop_url=self._url(detail["crop_key"]), thumbnail_url=self._url(detail["thumbnail_key"]),
                **{name: detail[name] for name in _PHOTO_DETAILS}))
        return out

    def similar(self, kind: str, vectors: NDArray[np.float32], *, fence: Fence, k: int, context: SearchContext,
                query: str) -> SearchOutcome:
        """Nearest neighbours of each query vector `(nq, d) float32` among `kind` detections in the fence."""
        served = self._served(kind)
        # The path follows the fence's size (indexers.search.choose_path): small fences EXACT, fences under half
        # the index CERTIFIED (exact too), no fence or a wider one the approximate index; `exact` reports it.
        result = fenced_search(served.data.index, served.data.meta, vectors, k, fence=fence)
        hits = []
        for q in range(len(vectors)):
            found = result.rows[q] >= 0
            hits += self._hits(served, result.rows[q][found], result.scores[q][found].astype(np.float64), q)
        return SearchOutcome(query, kind, served.version, context, fence, hits, result.exact, result.candidates,
                             len(vectors))

    def by_image(self, kind: str, image: bytes, *, fence: Fence, k: int, context: SearchContext) -> SearchOutcome:
        """Detect `kind` ("face" / "vehicle") in an uploaded photo or crop and search with each one found."""
        self._served(kind)  # fail fast, before running a model
        try:
            vectors = self.embedder.embed(kind, image)
        except UnusableQueryImage as error:
            raise SearchQueryError(str(error)) from error
        if not len(vectors):
            raise SearchQueryError(f"no usable {kind} found in the uploaded image")
        return self.similar(kind, vectors, fence=fence, k=k, context=context, query=f"{kind} by image")

    def more_like(self, detection_id: str, *, fence: Fence, k: int, context: SearchContext) -> SearchOutcome:
        """Search with the stored vector of an existing detection ("more like this")."""
        for kind, served in self._snapshot.items():
            rows = np.flatnonzero(served.data.meta.detection_id == detection_id)
            ids = served.data.meta.ids[rows]
            if rows.size and served.data.index.contains(ids).all():
                vectors = served.data.index.reconstruct(ids)
                return self.similar(kind, vectors, fence=fence, k=k, context=context, query=f"like {detection_id}")
        raise UnknownDetection(f"no served index holds an indexable detection {detection_id!r}")

    def plates(self, plate: str, *, fence: Fence, limit: int, context: SearchContext,
               cutoff: float = 80.0) -> SearchOutcome:
        """Plates matching `plate` (wildcards `*` `?`, OCR look-alikes tolerated) inside the fence."""
        served = self._served("plate")
        meta = served.data.meta
        rows = np.flatnonzero(fence.mask(meta) & (meta.kind == "plate"))
        texts = plate_texts(meta.attributes[rows].tolist())
        try:
            matches = search_plates(plate, texts, cutoff=cutoff, limit=limit)
        except PlateQueryError as error:
            raise SearchQueryError(str(error)) from error
        hits = self._hits(served, rows[matches.rows], matches.scores / 100.0)
        return SearchOutcome(f"plate {plate}", "plate", served.version, context, fence, hits, True, len(rows))

    def vehicles(self, description: str, *, fence: Fence, limit: int, context: SearchContext) -> SearchOutcome:
        """Vehicles whose class and colour match `description` ("black car"), most confident detections first."""
        served = self._served("vehicle")
        meta, details = served.data.meta, served.data.details
        in_fence = np.flatnonzero(fence.mask(meta) & (meta.kind == "vehicle"))
        try:
            rows = in_fence[vehicle_mask(meta.attributes[in_fence].tolist(), description)]
        except PlateQueryError as error:
            raise SearchQueryError(str(error)) from error
        score = details.column("score").to_numpy(zero_copy_only=False)[rows].astype(np.float64)
        order = np.lexsort((rows, -score))[:limit]
        hits = self._hits(served, rows[order], score[order])
        return SearchOutcome(f"vehicle {description}", "vehicle", served.version, context, fence, hits, True,
                             len(in_fence))
