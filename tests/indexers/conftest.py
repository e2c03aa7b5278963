"""Seeded synthetic embeddings and catalog records for the indexers tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from numpy.typing import NDArray

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def clustered_unit_vectors(n: int, d: int, seed: int, clusters: int = 64) -> NDArray[np.float32]:
    """`(n, d) float32` L2-normalised points around random centres, like embeddings of many people."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def brute_force(db: NDArray[np.float32], ids: NDArray[np.int64], queries: NDArray[np.float32],
                k: int) -> NDArray[np.int64]:
    top = np.argsort(-(queries @ db.T), axis=1, kind="stable")[:, :k]
    return ids[top]


def recall_at_k(db: NDArray[np.float32], ids: NDArray[np.int64], queries: NDArray[np.float32],
                found: NDArray[np.int64]) -> float:
    """Mean fraction of the brute-force top-k (k = found.shape[1]) present in `found`."""
    truth = brute_force(db, ids, queries, found.shape[1])
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


RecordFactory = Callable[..., tuple[pa.Table, pa.Table]]
VectorFactory = Callable[..., NDArray[np.float32]]
RecallFn = Callable[[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]], float]


def _records(lat: list[float | None], lon: list[float | None], *, kinds: list[str] | None = None,
             taken: list[datetime | None] | None = None, position_source: list[str] | None = None,
             time_source: list[str] | None = None, attributes: list[dict[str, str] | None] | None = None,
             ) -> tuple[pa.Table, pa.Table]:
    """One photo per position, one detection per photo (detection ids "d0000", photo ids "p0000")."""
    n = len(lat)
    photo_ids = [f"p{i:04d}" for i in range(n)]
    photos = pa.table({
        "photo_id": photo_ids,
        "lat": pa.array(lat, pa.float64()),
        "lon": pa.array(lon, pa.float64()),
        "taken_at_utc": pa.array(taken if taken is not None else [T0] * n, pa.timestamp("us", tz="UTC")),
        "position_source": position_source or ["exif"] * n,
        "time_source": time_source or ["exif_offset"] * n,
        "event_id": ["ev1"] * n,
        "place_name": ["somewhere"] * n,
        "thumbnail_key": [f"thumbs/{p}.jpg" for p in photo_ids],
    })
    attrs = attributes or [None] * n
    detections = pa.table({
        "detection_id": [f"d{i:04d}" for i in range(n)],
        "photo_id": photo_ids,
        "kind": kinds or ["face"] * n,
        "box": pa.array([[0.1, 0.2, 0.3, 0.4]] * n, pa.list_(pa.float32())),
        "score": pa.array([0.9] * n, pa.float32()),
        "quality": pa.array([0.8] * n, pa.float32()),
        "attributes": [json.dumps(a) if a is not None else None for a in attrs],
        "embedding": pa.array([[0.0] * 4] * n, pa.list_(pa.float32())),
        "model_name": ["sface"] * n,
        "model_version": ["2021dec"] * n,
        "crop_key": [f"crops/d{i:04d}.jpg" for i in range(n)],
    })
    return detections, photos


@pytest.fixture(scope="session")
def records() -> RecordFactory:
    return _records


@pytest.fixture(scope="session")
def t0() -> datetime:
    return T0


@pytest.fixture(scope="session")
def unit_vectors() -> VectorFactory:
    return clustered_unit_vectors


@pytest.fixture(scope="session")
def recall() -> RecallFn:
    return recall_at_k
