"""SearchService on real photos and a real S3 server: image queries, fences, presigned crops, hot swaps."""

from __future__ import annotations

import io
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from minio import Minio
from PIL import Image

from indexers.catalog_index import build_kind_index
from indexers.fence import Circle, Fence, TimeWindow
from indexers.s3_versions import new_version_name, point_to, publish_version, read_pointer, write_local
from ingest_api.services.search import (
    SearchContext,
    SearchQueryError,
    SearchService,
    SearchUnavailable,
    UnknownDetection,
)
from tests.indexers.real_catalog import (
    INCIDENT,
    T0,
    face_catalog,
    face_crop_jpeg,
    identity_stems,
    names_of,
    photo_rows,
    plate_catalog,
    synthetic_detections,
)

pytestmark = pytest.mark.integration
CASE = SearchContext(case_id="CASE-7", legal_basis="PACE s.19", requested_by="inspector-1")


def fence(*, unplaced: bool = False, untimed: bool = False, radius_m: float = 2000.0) -> Fence:
    return Fence(area=Circle(*INCIDENT, radius_m), window=TimeWindow(T0, T0 + timedelta(hours=2)),
                 include_unplaced=unplaced, include_untimed=untimed)


@pytest.fixture(scope="module")
def buckets(s3_client: Minio) -> tuple[str, str]:
    catalog, derived = f"srch-cat-{uuid.uuid4().hex[:8]}", f"srch-der-{uuid.uuid4().hex[:8]}"
    s3_client.make_bucket(catalog)
    s3_client.make_bucket(derived)
    return catalog, derived


@pytest.fixture(scope="module")
def search(s3_client: Minio, buckets: tuple[str, str], shared_data: Path, manifest: dict[str, dict[str, str]],
           tmp_path_factory: pytest.TempPathFactory) -> SearchService:
    """Face and plate indexes published to S3 and loaded; the face crops stored in `derived` like the job does."""
    catalog_bucket, derived = buckets
    faces = face_catalog(shared_data)
    for key, jpeg in faces.crops.items():
        s3_client.put_object(derived, key, io.BytesIO(jpeg), len(jpeg), content_type="image/jpeg")
    # one Obama photo without a trusted position, one without a trusted time
    names = [pid.removeprefix("photo-") + ".jpg" for pid in faces.photos.column("photo_id").to_pylist()]
    photos = photo_rows(names, run_id="run-faces", unplaced=frozenset({"obama_2009_congress.jpg"}),
                        untimed=frozenset({"obama_2012_portrait.jpg"}))
    build = tmp_path_factory.mktemp("build")
    for data in (build_kind_index("face", faces.detections, photos, run_ids=["run-faces"]),
                 build_kind_index("plate", *plate_catalog(manifest), run_ids=["run-plates"])):
        publish_version(s3_client, catalog_bucket, write_local(build, new_version_name(), data), expect_previous=None)
    service = SearchService(client=s3_client, catalog_bucket=catalog_bucket, derived_bucket=derived,
                            cache_dir=tmp_path_factory.mktemp("cache"), presign_expiry=timedelta(minutes=5))
    assert set(service.refresh()) == {"face", "plate"}
    return service


def test_a_face_crop_finds_that_identitys_photos_first(search: SearchService, shared_data: Path) -> None:
    crop = face_crop_jpeg(shared_data, "obama_2010_blue_room_crop.jpg")
    outcome = search.by_image("face", crop, fence=fence(unplaced=True, untimed=True), k=4, context=CASE)
    assert outcome.queries == 1 and outcome.exact
    found = names_of([h.photo_id for h in outcome.hits])
    assert set(found) == identity_stems("obama"), found
    record = outcome.audit_record()
    assert (record["case_id"], record["legal_basis"], record["query"]) == ("CASE-7", "PACE s.19", "face by image")
    assert record["detection_ids"] == [h.detection_id for h in outcome.hits]
    assert record["fence"]["include_unplaced"] is True and record["index_version"] == search.versions["face"]


def test_unplaced_and_untimed_photos_only_when_asked(search: SearchService, shared_data: Path) -> None:
    crop = face_crop_jpeg(shared_data, "obama_2010_blue_room_crop.jpg")
    found = {}
    for unplaced in (False, True):
        for untimed in (False, True):
            outcome = search.by_image("face", crop, fence=fence(unplaced=unplaced, untimed=untimed), k=30,
                                      context=CASE)
            found[unplaced, untimed] = set(names_of([h.photo_id for h in outcome.hits]))
    assert not {"obama_2009_congress", "obama_2012_portrait"} & found[False, False]
    assert "obama_2009_congress" in found[True, False] and "obama_2012_portrait" not in found[True, False]
    assert "obama_2012_portrait" in found[False, True] and "obama_2009_congress" not in found[False, True]
    assert {"obama_2009_congress", "obama_2012_portrait"} <= found[True, True]
    far = search.by_image("face", crop, fence=Fence(area=Circle(0.0, 0.0, 1000.0), window=None,
                                                    include_unplaced=False, include_untimed=True), k=5, context=CASE)
    assert far.hits == [] and far.candidates == 0


def test_results_link_exif_free_crops(search: SearchService, shared_data: Path) -> None:
    outcome = search.by_image("face", face_crop_jpeg(shared_data, "compreface_person_A_004.jpg"),
                              fence=fence(), k=4, context=CASE)
    assert set(names_of([h.photo_id for h in outcome.hits])) == identity_stems("person_a")
    hit = outcome.hits[0]
    assert hit.box is not None and hit.lat is not None and hit.place_name == "Westminster"
    assert hit.crop_url is not None and hit.thumbnail_url is not None
    response = httpx.get(hit.crop_url, timeout=10)
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and not image.getexif()


def test_more_like_plates_and_errors(search: SearchService) -> None:
    meta = search._snapshot["face"].data.meta
    seed = str(meta.detection_id[np.flatnonzero(meta.photo_id == "photo-compreface_person_B_007")[0]])
    like = search.more_like(seed, fence=fence(), k=2, context=CASE)
    assert names_of([h.photo_id for h in like.hits]) == ["compreface_person_B_007", "compreface_person_B_008"]
    plates = search.plates("RK-87BAC", fence=fence(), limit=5, context=CASE)
    assert plates.hits[0].photo_id.startswith("photo-eu_sk_RK878AC") and plates.hits[0].score >= 0.8
    wildcard = search.plates("RK*", fence=fence(), limit=10, context=CASE)
    assert {h.attributes["plate_text"] for h in wildcard.hits} == {"RK878AC", "RK161AG"}
    with pytest.raises(UnknownDetection):
        search.more_like("no-such-detection", fence=fence(), k=2, context=CASE)
    with pytest.raises(SearchUnavailable):
        search.vehicles("black car", fence=fence(), limit=5, context=CASE)
    with pytest.raises(SearchQueryError, match="no usable face"):
        blank = io.BytesIO()
        Image.new("RGB", (200, 200), (40, 120, 200)).save(blank, format="PNG")
        search.by_image("face", blank.getvalue(), fence=fence(), k=3, context=CASE)
    with pytest.raises(SearchQueryError, match="unreadable"):
        search.by_image("face", b"not an image", fence=fence(), k=3, context=CASE)


def test_swapping_versions_under_concurrent_queries_never_errors(s3_client: Minio, buckets: tuple[str, str],
                                                                 tmp_path: Path) -> None:
    catalog_bucket = f"swap-{uuid.uuid4().hex[:8]}"
    s3_client.make_bucket(catalog_bucket)
    rng = np.random.default_rng(7)
    versions: dict[str, tuple[str, set[str]]] = {}
    previous = None
    for size in (300, 120, 500):
        names = [f"s{size}-{i}" for i in range(size)]
        data = build_kind_index("face", synthetic_detections(names, seed=size), photo_rows(names, run_id=f"r{size}"),
                                run_ids=[f"r{size}"])
        version = new_version_name()
        pointer = publish_version(s3_client, catalog_bucket, write_local(tmp_path / "build", version, data),
                                  expect_previous=previous)
        versions[version] = (pointer.release_sha256, set(data.meta.detection_id.tolist()))
        previous = version
    service = SearchService(client=s3_client, catalog_bucket=catalog_bucket, derived_bucket=buckets[1],
                            cache_dir=tmp_path / "cache", presign_expiry=timedelta(minutes=1), kinds=("face",))
    service.refresh()
    queries = rng.standard_normal((4, 8)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    errors: list[BaseException] = []
    answered: dict[str, int] = {}  # queries answered by each version
    stop = threading.Event()

    def query() -> None:
        while not stop.is_set():
            try:
                outcome = service.similar("face", queries, fence=fence(unplaced=True, untimed=True), k=5,
                                          context=CASE, query="swap test")
                assert {h.detection_id for h in outcome.hits} <= versions[outcome.index_version][1]
                assert len(outcome.hits) == 4 * 5
                answered[outcome.index_version] = answered.get(outcome.index_version, 0) + 1
            except BaseException as error:  # noqa: B036 - collected and re-raised by the main thread
                errors.append(error)
                return

    threads = [threading.Thread(target=query) for _ in range(4)]
    for thread in threads:
        thread.start()
    names = list(versions)
    # Two rounds through every version; after each swap, wait (not a timing assumption: as long as it takes) until
    # queries were answered by the new version while the others keep querying through the next swap.
    for i in range(2 * len(names)):
        target = names[i % len(names)]
        current = read_pointer(s3_client, catalog_bucket, "face")
        point_to(s3_client, catalog_bucket, "face", target, versions[target][0],
                 expect_previous=current.version if current else None)
        before = answered.get(target, 0)
        assert service.refresh() == {"face": target}
        while answered.get(target, 0) < before + 3 and not errors:
            time.sleep(0.01)
        if errors:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors[0]
    assert set(answered) == set(names), answered
