"""The search routes over real HTTP: a served API that picks up published index versions by itself.

The governance gate (authentication, case and fence policy, audit; issue 7) is a router dependency tested
by tests/ingest_api/governance; here it is overridden so these tests exercise the search itself.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from minio import Minio

from indexers.catalog_index import build_kind_index
from indexers.s3_versions import new_version_name, publish_version, write_local
from infra.storage.config import BucketNames, S3Settings
from ingest_api.app import create_app
from ingest_api.db.migrate import upgrade
from ingest_api.db.models import Event
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Principal, Role
from ingest_api.governance.search_gate import govern_search
from ingest_api.governance.tables import Case, CaseEvent
from tests.indexers.real_catalog import (
    INCIDENT,
    T0,
    face_catalog,
    face_crop_jpeg,
    identity_stems,
    names_of,
    plate_catalog,
)
from tests.ingest_api.conftest import api_settings

pytestmark = pytest.mark.integration
INVESTIGATOR = Principal(user_id="investigator-1", role=Role.INVESTIGATOR, assigned_cases=frozenset({"C-1", "C-2"}))


def _cases_over_the_catalog(database_url: str) -> None:
    """Case C-1 is linked to the catalog's event (ev-bridge); case C-2 to nothing."""
    engine = build_engine(database_url)
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        session.add(Event(id="ev-bridge", name="bridge", lat=INCIDENT[0], lon=INCIDENT[1], radius_m=1500,
                          starts_at=T0, ends_at=T0 + timedelta(hours=2), created_at=now))
        session.add_all([Case(id=case_id, reference=case_id, title=case_id, created_by="test", created_at=now)
                         for case_id in ("C-1", "C-2")])
        session.flush()
        session.add(CaseEvent(case_id="C-1", event_id="ev-bridge", linked_by="test", linked_at=now))
        session.commit()
    engine.dispose()


def fence(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {"circle": {"lat": INCIDENT[0], "lon": INCIDENT[1], "radius_m": 1500},
                             "start": T0.isoformat(), "end": (T0 + timedelta(hours=2)).isoformat(),
                             "include_unplaced": False, "include_untimed": False}
    return {k: v for k, v in (value | overrides).items() if v is not None}


@pytest.fixture(scope="module")
def search_api(s3_settings: S3Settings, s3_client: Minio, shared_data: Path, manifest: dict[str, dict[str, str]],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The API over published indexes; yields its URL and its database URL (for the audit log)."""
    tag = uuid.uuid4().hex[:8]
    buckets = BucketNames(evidence=f"sa-ev-{tag}", derived=f"sa-der-{tag}", catalog=f"sa-cat-{tag}")
    settings = api_settings(s3_settings.model_copy(update={"buckets": buckets}), tmp_path_factory.mktemp("api"))
    for name in (buckets.derived, buckets.catalog):
        s3_client.make_bucket(name)
    faces = face_catalog(shared_data)
    for key, jpeg in faces.crops.items():
        s3_client.put_object(buckets.derived, key, io.BytesIO(jpeg), len(jpeg), content_type="image/jpeg")
    build = tmp_path_factory.mktemp("build")
    for data in (build_kind_index("face", faces.detections, faces.photos, run_ids=["run-faces"]),
                 build_kind_index("plate", *plate_catalog(manifest), run_ids=["run-plates"])):
        publish_version(s3_client, buckets.catalog, write_local(build, new_version_name(), data), expect_previous=None)
    upgrade(settings.effective_database_url)
    _cases_over_the_catalog(settings.effective_database_url)
    app = create_app(settings)
    # The gate (case, legal basis, fence limits) has its own tests; here an investigator on case C-1 has passed it.
    app.dependency_overrides[govern_search] = lambda: INVESTIGATOR
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="search-api", daemon=True)
    thread.start()
    url = f"http://{settings.host}:{settings.port}"
    try:
        deadline = time.monotonic() + 60
        while not server.started or set(httpx.get(f"{url}/v1/search/indexes", timeout=10).json()) != {"face", "plate"}:
            assert thread.is_alive() and time.monotonic() < deadline, "the API did not load the published indexes"
            time.sleep(0.2)
        yield url, settings.effective_database_url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture(scope="module")
def base_url(search_api: tuple[str, str]) -> str:
    return search_api[0]


def test_a_face_crop_uploaded_by_an_investigator(search_api: tuple[str, str], shared_data: Path) -> None:
    base_url, database_url = search_api
    crop = face_crop_jpeg(shared_data, "compreface_person_A_002.jpg")
    body = {"fence": fence(), "image_base64": base64.b64encode(crop).decode(), "k": 4, "case_id": "C-1",
            "legal_basis": "warrant 42"}
    response = httpx.post(f"{base_url}/v1/search/faces", json=body, timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(names_of([hit["photo_id"] for hit in result["hits"]])) == identity_stems("person_a")
    top = result["hits"][0]
    assert top["taken_at_utc"] and top["lat"] is not None and len(top["box"]) == 4
    assert top["photo_width"] > 0 and top["photo_height"] > 0 and len(top["photo_sha256"]) == 64
    assert top["position_source"] in {"exif", "device", "pin"} and top["time_source"] != "unknown"
    assert httpx.get(top["crop_url"], timeout=10).status_code == 200
    like = httpx.post(f"{base_url}/v1/search/similar", json={"fence": fence(), "detection_id": top["detection_id"],
                                                               "k": 1}, timeout=30)
    assert like.status_code == 200 and like.json()["hits"][0]["detection_id"] == top["detection_id"]
    engine = build_engine(database_url)
    shown = [e for e in AuditLog(engine).entries_for_case("C-1") if e.action == "search_results"]
    engine.dispose()
    assert shown and list(shown[0].result_ids) == [hit["detection_id"] for hit in result["hits"]]
    assert shown[0].actor == INVESTIGATOR.user_id and json.loads(shown[0].parameters)["legal_basis"] == "warrant 42"


def test_a_search_sees_only_the_events_of_its_case(base_url: str, shared_data: Path) -> None:
    crop = face_crop_jpeg(shared_data, "compreface_person_A_002.jpg")
    body = {"fence": fence(), "image_base64": base64.b64encode(crop).decode(), "k": 4, "legal_basis": "warrant 42"}
    linked = httpx.post(f"{base_url}/v1/search/faces", json=body | {"case_id": "C-1"}, timeout=60)
    unlinked = httpx.post(f"{base_url}/v1/search/faces", json=body | {"case_id": "C-2"}, timeout=60)
    assert linked.status_code == unlinked.status_code == 200
    assert linked.json()["hits"] and unlinked.json()["hits"] == [] and unlinked.json()["candidates"] == 0


def test_a_plate_with_one_misread_character(base_url: str) -> None:
    response = httpx.post(f"{base_url}/v1/search/plates", json={"fence": fence(), "plate": "BA3O2OZ"}, timeout=30)
    assert response.status_code == 200, response.text
    hits = response.json()["hits"]
    assert hits[0]["attributes"]["plate_text"] == "BA302OZ" and hits[0]["place_name"] == "Westminster"


@pytest.mark.parametrize("bad_fence", [
    None,
    fence(include_unplaced=None),
    fence(include_untimed=None),
    fence(start=None),
    fence(circle=None),
    fence(polygon=[[51.5, -0.12], [51.6, -0.12], [51.5, -0.1]]),
    fence(start=(T0 + timedelta(hours=3)).isoformat()),
    fence(start="2025-03-22T14:00:00"),
])
def test_every_query_needs_a_complete_fence(base_url: str, bad_fence: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"plate": "BA302OZ"} | ({"fence": bad_fence} if bad_fence is not None else {})
    response = httpx.post(f"{base_url}/v1/search/plates", json=body, timeout=30)
    assert response.status_code == 422, response.text


def test_polygon_fences_and_errors(base_url: str) -> None:
    lat, lon = INCIDENT
    square = [[lat - 0.01, lon - 0.01], [lat - 0.01, lon + 0.01], [lat + 0.01, lon + 0.01], [lat + 0.01, lon - 0.01]]
    polygon = fence(circle=None, polygon=square)
    response = httpx.post(f"{base_url}/v1/search/plates", json={"fence": polygon, "plate": "RK*"}, timeout=30)
    assert response.status_code == 200 and len(response.json()["hits"]) == 4
    unavailable = httpx.post(f"{base_url}/v1/search/vehicles/attributes",
                             json={"fence": fence(), "description": "black car"}, timeout=30)
    assert unavailable.status_code == 503 and unavailable.json()["code"] == "index_unavailable"
    bad = httpx.post(f"{base_url}/v1/search/faces", json={"fence": fence(), "image_base64": "@@"}, timeout=30)
    assert bad.status_code == 422 and bad.json()["code"] == "bad_query"
    unknown = httpx.post(f"{base_url}/v1/search/similar", json={"fence": fence(), "detection_id": "nope"}, timeout=30)
    assert unknown.status_code == 404


def test_the_routes_are_documented(base_url: str) -> None:
    spec = httpx.get(f"{base_url}/openapi.json", timeout=30).json()
    for path in ("faces", "vehicles", "vehicles/attributes", "plates", "similar"):
        assert f"/v1/search/{path}" in spec["paths"]
    required = set(spec["components"]["schemas"]["FenceIn"]["required"])
    assert {"start", "end", "include_unplaced", "include_untimed"} <= required
