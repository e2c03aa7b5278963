"""Building and updating per-kind indexes from catalog records: synthetic records and the real photos."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from beam_jobs.records import DETECTION_SCHEMA
from indexers import layout
from indexers.catalog_index import (
    CatalogIndexError,
    NothingToIndexError,
    build_kind_index,
    indexable_mask,
    update_kind_index,
    withdrawn_photo_ids,
)
from indexers.fence import Circle, Fence, TimeWindow
from indexers.plates import plate_texts, search_plates
from indexers.s3_versions import read_local, write_local
from indexers.search import fenced_search
from indexers.vector_index import IndexParams, IndexType, SearchPath
from tests.indexers.real_catalog import (
    IDENTITIES,
    INCIDENT,
    T0,
    face_catalog,
    identity_stems,
    names_of,
    photo_rows,
    plate_catalog,
)


def _detections(photo_names: list[str], vectors: np.ndarray, *, kind: str = "face",
                attrs: list[dict[str, object]] | None = None) -> pa.Table:
    rows = []
    for i, name in enumerate(photo_names):
        rows.append({"detection_id": f"det-{name}-{i}", "photo_id": f"photo-{name}", "kind": kind,
                     "box": [1.0, 2.0, 3.0, 4.0], "score": 0.9, "quality": 0.8,
                     "attributes": json.dumps((attrs or [{}] * len(photo_names))[i]),
                     "embedding": vectors[i].tolist(), "model_name": "m", "model_version": "v", "crop_key": None})
    return pa.Table.from_pylist(rows, schema=DETECTION_SCHEMA)


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_only_indexable_detections_of_the_kind_are_indexed() -> None:
    names = [f"n{i}" for i in range(5)]
    attrs: list[dict[str, object]] = [{}, {"low_quality": True}, {"indexable": False}, {"indexable": True}, {}]
    det = _detections(names, _unit(5, 8, 1), attrs=attrs)
    assert indexable_mask(det, "face").tolist() == [True, False, False, True, True]
    assert not indexable_mask(det, "vehicle").any()
    built = build_kind_index("face", det, photo_rows(names, run_id="r1"), run_ids=["r1"])
    assert sorted(built.meta.photo_id.tolist()) == ["photo-n0", "photo-n3", "photo-n4"]
    assert len(built.index) == 3 and built.details.column("thumbnail_key")[0].as_py().startswith("thumbnails/")
    with pytest.raises(NothingToIndexError):
        build_kind_index("person", det, photo_rows(names, run_id="r1"), run_ids=["r1"])
    with pytest.raises(CatalogIndexError, match="unknown index kind"):
        indexable_mask(det, "tattoo")


@pytest.mark.parametrize("index_type", [IndexType.FLAT, IndexType.HNSW])
def test_update_adds_new_runs_and_erases_withdrawn_photos(index_type: IndexType) -> None:
    old_names, new_names = [f"a{i}" for i in range(40)], [f"b{i}" for i in range(10)]
    vectors = _unit(50, 16, 2)
    base = build_kind_index("face", _detections(old_names, vectors[:40]), photo_rows(old_names, run_id="r1"),
                            run_ids=["r1"], index_type=index_type)
    base_total = int(base.index.index.ntotal)
    withdrawn = withdrawn_photo_ids(base.details, {"sub-a3", "sub-b1"})
    assert withdrawn == {"photo-a3"}
    new_photos = photo_rows(new_names, run_id="r2")
    withdrawn |= withdrawn_photo_ids(new_photos, {"sub-a3", "sub-b1"})
    # the new run repeats one old detection (same photo, same model): it must not be added twice
    new_det = pa.concat_tables([_detections(new_names, vectors[40:]), _detections(old_names[:1], vectors[:1])])
    both = pa.concat_tables([new_photos, photo_rows(old_names[:1], run_id="r1")])
    updated = update_kind_index(base, new_det, both, new_run_ids=["r2"], withdrawn_photo_ids=withdrawn)
    assert int(base.index.index.ntotal) == base_total, "the served index must not change"
    assert updated.run_ids == ("r1", "r2")
    assert len(updated.index) == len(updated.meta) == 40 - 1 + 10 - 1
    assert int(updated.index.index.ntotal) == len(updated.index), "withdrawn vectors are erased, not tombstoned"
    assert not {"photo-a3", "photo-b1"} & set(updated.meta.photo_id.tolist())
    assert updated.details.column("detection_id").to_pylist() == updated.meta.detection_id.tolist()
    # every surviving vector is still found exactly where it was
    scores, ids = updated.index.search(vectors[[0, 45]], 1, path=SearchPath.EXACT)
    assert ids[:, 0].tolist() == updated.meta.ids[np.isin(updated.meta.photo_id, ["photo-a0", "photo-b5"])].tolist()
    assert np.allclose(scores[:, 0], 1.0, atol=1e-5)


def test_plate_kind_is_text_only() -> None:
    names = ["p0", "p1"]
    rows = [{"detection_id": f"pl-{n}", "photo_id": f"photo-{n}", "kind": "plate", "box": [1.0, 1.0, 2.0, 2.0],
             "score": 0.9, "quality": 0.9, "attributes": json.dumps({"plate_text": t}), "embedding": None,
             "model_name": "plates", "model_version": "v", "crop_key": None}
            for n, t in zip(names, ["AB12", "CD34"], strict=True)]
    built = build_kind_index("plate", pa.Table.from_pylist(rows, schema=DETECTION_SCHEMA),
                             photo_rows(names, run_id="r"), run_ids=["r"])
    assert len(built.index) == 0 and len(built.meta) == 2
    assert plate_texts(built.meta.attributes.tolist()) == ["AB12", "CD34"]


def _fence(radius_m: float = 2000.0) -> Fence:
    return Fence(area=Circle(*INCIDENT, radius_m), window=TimeWindow(T0, T0.replace(hour=T0.hour + 2)),
                 include_unplaced=False, include_untimed=False)


@pytest.mark.parametrize("identity, query_photo", [("obama", "obama_2012_portrait"),
                                                   ("person_a", "compreface_person_A_004")])
def test_real_faces_of_one_identity_come_first(shared_data: Path, identity: str, query_photo: str) -> None:
    catalog = face_catalog(shared_data)
    built = build_kind_index("face", catalog.detections, catalog.photos, run_ids=["run-faces"])
    meta = built.meta
    row = int(np.flatnonzero(meta.photo_id == f"photo-{query_photo}")[0])
    query = built.index.reconstruct(meta.ids[[row]])
    result = fenced_search(built.index, meta, query, k=len(IDENTITIES[identity]), fence=_fence())
    found = names_of(meta.photo_id[result.rows[0]].tolist())
    assert set(found) == identity_stems(identity), found


def test_real_plate_with_one_wrong_character_is_found(manifest: dict[str, dict[str, str]]) -> None:
    detections, photos = plate_catalog(manifest)
    built = build_kind_index("plate", detections, photos, run_ids=["run-plates"])
    rows = np.flatnonzero(_fence().mask(built.meta))
    texts = plate_texts(built.meta.attributes[rows].tolist())
    one_wrong = [("RK87BAC", "RK878AC"), ("CYZ5I39", "CYZ5139"), ("WSQ3O21", "WSQ3021"), ("JOG9X21", "JOG9221")]
    for wrong, plate in one_wrong:
        matches = search_plates(wrong, texts, limit=3)
        best = built.meta.photo_id[rows[matches.rows[0]]]
        assert plate in best, (wrong, best)


def test_a_written_version_reads_back_with_the_same_fence_columns(tmp_path: Path) -> None:
    """Regression: Parquet stores timestamp[s] as [ms]; reloaded capture times were 1000x too large."""
    names = [f"n{i}" for i in range(6)]
    original = build_kind_index("face", _detections(names, _unit(6, 8, 3)),
                                photo_rows(names, run_id="r1", unplaced=frozenset({"n1"}), untimed=frozenset({"n2"})),
                                run_ids=["r1"])
    loaded = read_local(write_local(tmp_path, "v1", original))
    for column in ("ids", "lat", "lon", "position_trusted", "taken_at", "time_known", "time_trusted"):
        assert np.array_equal(getattr(loaded.meta, column), getattr(original.meta, column), equal_nan=column in
                              ("lat", "lon")), column
    assert np.array_equal(_fence().mask(loaded.meta), _fence().mask(original.meta))
    assert loaded.details.equals(original.details) and loaded.run_ids == ("r1",)


@pytest.mark.parametrize("index_type", [IndexType.FLAT, IndexType.HNSW, IndexType.IVFPQ_REFINE])
def test_versions_keep_the_time_layout_through_updates(index_type: IndexType, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows (and, but for IVF-PQ, vectors) stay in capture-time order with the untimed tail last; ids and the
    vector of each id survive every re-sort; withdrawn photos leave; fenced search answers as brute force."""
    monkeypatch.setattr(layout, "LAYOUT_BLOCK_ROWS", 8)  # several time blocks in a small table
    old_names, new_names = [f"a{i}" for i in range(300)], [f"b{i}" for i in range(100)]
    vectors = _unit(400, 16, 4)
    by_name = dict(zip(old_names + new_names, vectors, strict=True))
    # the new run's photos were taken *between* the old ones: appending them would break the order
    old_photos = photo_rows(old_names, run_id="r1", untimed=frozenset({"a7", "a8"}))
    old_photos = old_photos.set_column(old_photos.schema.get_field_index("taken_at_utc"), "taken_at_utc",
                                       pa.array([None if n in ("a7", "a8") else T0 + timedelta(minutes=2 * i)
                                                 for i, n in enumerate(old_names)], pa.timestamp("us", tz="UTC")))
    new_photos = photo_rows(new_names, run_id="r2", untimed=frozenset({"b3"}))
    new_photos = new_photos.set_column(new_photos.schema.get_field_index("taken_at_utc"), "taken_at_utc",
                                       pa.array([None if n == "b3" else T0 + timedelta(minutes=4 * i + 1)
                                                 for i, n in enumerate(new_names)], pa.timestamp("us", tz="UTC")))
    base = build_kind_index("face", _detections(old_names, vectors[:300]), old_photos, run_ids=["r1"],
                            index_type=index_type, params=IndexParams(ivf_nlist=4, pq_m=4, hnsw_m=8))
    updated = update_kind_index(base, _detections(new_names, vectors[300:]), new_photos, new_run_ids=["r2"],
                                withdrawn_photo_ids={"photo-a10", "photo-b20"})
    for state in (base, updated):
        meta = state.meta
        timed = meta.timed
        tail = int(np.count_nonzero(timed))
        assert timed[:tail].all() and not timed[tail:].any() and meta.untimed_tail == tail
        times = meta.taken_at[:tail]
        assert all(times[i - 8:i].max() <= times[i:i + 8].min() for i in range(8, tail, 8)), "blocks in time order"
        assert state.details.column("detection_id").to_pylist() == meta.detection_id.tolist()
        assert state.index.aligned_with(meta.ids) == (state is base or index_type is not IndexType.IVFPQ_REFINE)
        names = [p.removeprefix("photo-") for p in meta.photo_id.tolist()]
        np.testing.assert_array_equal(state.index.reconstruct(meta.ids), np.stack([by_name[n] for n in names]))
    assert {"photo-b3", "photo-a7", "photo-a8"} == set(updated.meta.photo_id[~updated.meta.timed].tolist())
    assert not {"photo-a10", "photo-b20"} & set(updated.meta.photo_id.tolist())
    assert len(updated.index) == len(updated.meta) == 398
    window = TimeWindow(T0 + timedelta(minutes=30), T0 + timedelta(hours=1))
    fence = Fence(area=Circle(*INCIDENT, 2_000.0), window=window, include_unplaced=False, include_untimed=True)
    inside = fence.mask(updated.meta)
    assert inside[~updated.meta.timed].all() and 0 < inside.sum() < 398
    queries = vectors[[3, 350]]
    truth = np.argsort(-(queries @ updated.index.reconstruct(updated.meta.ids[inside]).T), axis=1)[:, :5]
    for path_limits in ((1_000, 0.0), (0, 1.0)):  # EXACT, then CERTIFIED
        result = fenced_search(updated.index, updated.meta, queries, 5, fence=fence, exact_below=path_limits[0],
                               certified_fraction_below=path_limits[1])
        assert result.ids.tolist() == updated.meta.ids[inside][truth].tolist()
