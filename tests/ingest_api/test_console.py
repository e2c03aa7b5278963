"""The investigator console in headless Chromium (Playwright, Debian chromium), on the real sample photos.

A governed API (no dependency overrides: real sign-in, case checks, audit) serves face and plate indexes built
from ../shared/data the way tests/ingest_api/test_search_api.py builds them, plus EXIF-free thumbnails made by
the extraction job's own thumbnail function. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio import Minio
from PIL import Image
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from beam_jobs.extraction.thumbnails import make_thumbnail
from indexers.catalog_index import build_kind_index
from indexers.s3_versions import new_version_name, publish_version, write_local
from infra import local_stack
from infra.storage.config import BucketNames, S3Settings
from ingest_api.db.migrate import upgrade
from ingest_api.db.models import Event
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import CaseService
from ingest_api.governance.policy import Principal, Role
from ingest_api.governance.staff import SYSTEM, StaffService
from tests.indexers.real_catalog import INCIDENT, T0, face_catalog, face_crop_jpeg, load_rgb, photo_id, plate_catalog
from tests.ingest_api.conftest import api_settings
from tests.ingest_api.test_upload_page import ARTIFACTS, CHROMIUM, FLAGS

pytestmark = pytest.mark.integration
PASSWORD = "correct horse battery staple"
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
WARRANT = "PACE s.8 warrant 2025/117"


@dataclass(frozen=True)
class Console:
    base_url: str
    database_url: str
    case_id: str


def _put(client: Minio, bucket: str, key: str, jpeg: bytes) -> None:
    client.put_object(bucket, key, io.BytesIO(jpeg), len(jpeg), content_type="image/jpeg")


def _publish(client: Minio, buckets: BucketNames, shared_data: Path, manifest: dict[str, dict[str, str]],
             build: Path) -> None:
    """Face and plate indexes with their crops and EXIF-free thumbnails in the derived bucket."""
    faces = face_catalog(shared_data)
    for key, jpeg in faces.crops.items():
        _put(client, buckets.derived, key, jpeg)
    plates = plate_catalog(manifest)
    photos = set((shared_data / "faces").iterdir())
    photos |= {shared_data / name for name in manifest if name.startswith("vehicles/")}
    for path in sorted(photos):
        image = Image.fromarray(load_rgb(path))
        _put(client, buckets.derived, f"thumbnails/{photo_id(path.name)}.jpg", make_thumbnail(image))
        if path.parent.name == "vehicles":  # the plate box the catalog records (1, 2, 60, 20), cut out
            crop = io.BytesIO()
            image.crop((1, 2, 61, 22)).save(crop, format="JPEG")
            _put(client, buckets.derived, f"crops/{photo_id(path.name)}-plate.jpg", crop.getvalue())
    for data in (build_kind_index("face", faces.detections, faces.photos, run_ids=["run-faces"]),
                 build_kind_index("plate", *plates, run_ids=["run-plates"])):
        publish_version(client, buckets.catalog, write_local(build, new_version_name(), data), expect_previous=None)


def _staff_and_case(database_url: str) -> str:
    """Supervisor sofia opens a case for investigator ines and links the bridge incident; aude is an auditor."""
    engine = build_engine(database_url)
    try:
        sessions, audit = session_factory(engine), AuditLog(engine)
        staff, cases = StaffService(sessions=sessions, audit=audit), CaseService(sessions=sessions, audit=audit)
        for name, role in (("sofia", Role.SUPERVISOR), ("ines", Role.INVESTIGATOR), ("aude", Role.AUDITOR)):
            staff.create(actor=SYSTEM, username=name, role=role, password=PASSWORD)
        supervisor = Principal("sofia", Role.SUPERVISOR)
        case = cases.create(actor=supervisor, reference="MPS/2025/0322", title="Westminster Bridge attack")
        cases.assign(actor=supervisor, case_id=case.id, username="ines")
        with sessions() as session:
            # The id the published catalog's photos carry: a case only searches the events linked to it.
            session.add(Event(id="ev-bridge", name="Westminster Bridge", lat=INCIDENT[0], lon=INCIDENT[1],
                              radius_m=1500, starts_at=T0, ends_at=T0 + timedelta(hours=2),
                              created_at=datetime.now(UTC)))
            session.commit()
        cases.link_event(actor=supervisor, case_id=case.id, event_id="ev-bridge")
        return case.id
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def console(s3_settings: S3Settings, s3_client: Minio, shared_data: Path, manifest: dict[str, dict[str, str]],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    tag = uuid.uuid4().hex[:8]
    buckets = BucketNames(evidence=f"co-ev-{tag}", derived=f"co-der-{tag}", catalog=f"co-cat-{tag}")
    settings = api_settings(s3_settings.model_copy(update={"buckets": buckets}), tmp_path_factory.mktemp("console"))
    for name in (buckets.derived, buckets.catalog):
        s3_client.make_bucket(name)
    _publish(s3_client, buckets, shared_data, manifest, tmp_path_factory.mktemp("build"))
    upgrade(settings.effective_database_url)
    case_id = _staff_and_case(settings.effective_database_url)
    with local_stack.api_in_background(settings) as base_url:
        login = httpx.post(f"{base_url}/v1/auth/token", json={"username": "ines", "password": PASSWORD}, timeout=30)
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        deadline = time.monotonic() + 60
        while set(httpx.get(f"{base_url}/v1/search/indexes", headers=headers, timeout=10).json()) != {"face", "plate"}:
            assert time.monotonic() < deadline, "the API did not load the published indexes"
            time.sleep(0.2)
        yield Console(base_url, settings.effective_database_url, case_id)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail("Debian chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


def _page(browser: Browser, console: Console, viewport: ViewportSize, **options: Any) -> Page:
    # A zone far from UTC: the console must read and write every time as UTC, never in the browser's zone.
    # bypass_csp: the page's policy forbids eval, which Playwright's wait_for_function strings need.
    context = browser.new_context(viewport=viewport, base_url=console.base_url, timezone_id="America/New_York",
                                  bypass_csp=True, **options)
    page = context.new_page()
    page.goto("/console")
    return page


def _sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")


def _search(page: Page, kind: str, *, previous: int, fill: dict[str, str]) -> None:
    page.select_option("#search-kind", kind)
    for selector, value in fill.items():
        page.fill(selector, value)
    page.click("#run-search")
    page.wait_for_function(f"window.witnessConsole.searches > {previous}", timeout=120_000)


def _open_first_result(page: Page) -> None:
    page.locator("#results .card").first.click()
    page.wait_for_function("document.getElementById('detail').open")
    page.wait_for_function("document.getElementById('detail-photo').complete")


def _search_tab_for_the_incident(page: Page, legal_basis: str) -> None:
    page.locator(".event-row", has_text="Westminster Bridge —").get_by_role("button").click()
    page.fill("#legal-basis", legal_basis)


def test_investigator_creates_an_event_and_searches_on_desktop(browser: Browser, console: Console,
                                                               shared_data: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = _page(browser, console, DESKTOP)
    _sign_in(page, "ines")
    page.wait_for_function("window.witnessConsole.ready === true")
    assert "Westminster Bridge attack" in page.inner_text("#cases")
    assert page.evaluate("sessionStorage.length") == 1

    page.click("#new-event summary")
    for selector, value in {"#event-name": "Bridge appeal", "#event-lat": "51.5010", "#event-lon": "-0.1240",
                            "#event-start": "2025-03-22T13:30", "#event-end": "2025-03-22T18:00"}.items():
        page.fill(selector, value)
    page.click("#event-form button[type=submit]")
    page.wait_for_function("document.getElementById('event-qr').complete && "
                           "document.getElementById('event-qr').naturalWidth > 0")
    assert "/e/" in page.inner_text("#event-link")
    # The case list reloads after the event is created, on its own request: wait for it rather than race it.
    page.wait_for_function("document.getElementById('cases').innerText.includes('Bridge appeal')")
    page.screenshot(path=str(ARTIFACTS / "console-desktop-event.png"), full_page=True)

    _search_tab_for_the_incident(page, WARRANT)
    assert page.input_value("#fence-start") == "2025-03-22T14:00"  # UTC, though the browser is in New York
    # The time-window sliders span the event's window +- 6 h in minutes, and write the UTC inputs.
    def window() -> tuple[str, str]:
        return page.input_value("#fence-start"), page.input_value("#fence-end")

    page.fill("#window-from", str(6 * 60 + 30))
    page.fill("#window-to", str(6 * 60 + 60))
    assert window() == ("2025-03-22T14:30", "2025-03-22T15:00")
    page.fill("#window-to", str(6 * 60))  # dragged below the start: the start is pushed back, never an empty window
    assert window() == ("2025-03-22T13:55", "2025-03-22T14:00")
    page.fill("#window-from", str(6 * 60))
    page.fill("#window-to", str(6 * 60 + 120))
    assert window() == ("2025-03-22T14:00", "2025-03-22T16:00")
    _search(page, "plate", previous=0, fill={"#plate": "BA3O2OZ"})
    assert "BA302OZ" in page.locator("#results .card").first.inner_text()
    audited = page.inner_text("#audit-line")
    assert console.case_id in audited and WARRANT in audited and "radius 1500 m" in audited
    assert page.locator("#map circle.result").count() == page.locator("#results .card").count() == 2
    assert page.locator("#timeline circle.mark.clock-trusted").count() == 2
    _open_first_result(page)
    page.wait_for_selector("#detail-box rect[data-box=drawn]", state="attached")  # a 406 px photo: exact scale
    assert "trusted" in page.inner_text("#detail-facts") and "Westminster" in page.inner_text("#detail-facts")
    page.screenshot(path=str(ARTIFACTS / "console-desktop-plate-detail.png"), full_page=True)
    page.click("#close-detail")

    crop = face_crop_jpeg(shared_data, "compreface_person_A_002.jpg")
    page.select_option("#search-kind", "faces")
    page.set_input_files("#query-image", {"name": "suspect.jpg", "mimeType": "image/jpeg", "buffer": crop})
    _search(page, "faces", previous=1, fill={})
    best = page.evaluate("window.witnessConsole.groups.slice(0, 4).map(g => g.best.photo_id)")
    assert set(best) == {photo_id(n) for n in ("compreface_person_A_002.jpg", "compreface_person_A_004.jpg",
                                               "compreface_person_A_005.jpg", "compreface_person_A_006.jpg")}
    assert page.locator("#timeline circle.mark").count() == page.locator("#results .card").count()
    page.screenshot(path=str(ARTIFACTS / "console-desktop-faces.png"), full_page=True)
    _open_first_result(page)
    opened = page.evaluate("window.witnessConsole.open.best.detection_id")
    page.click("#more-like")
    page.wait_for_function("window.witnessConsole.searches > 2", timeout=120_000)
    assert page.evaluate("window.witnessConsole.search.outcome.hits[0].detection_id") == opened
    assert "more like" in page.inner_text("#audit-line")

    engine = build_engine(console.database_url)
    searches = [e for e in AuditLog(engine).entries_for_case(console.case_id)
                if e.action == "search" and json.loads(e.parameters)["legal_basis"] == WARRANT]
    engine.dispose()
    assert [json.loads(e.parameters)["path"] for e in searches] == [
        "/v1/search/plates", "/v1/search/faces", "/v1/search/similar"]
    page.context.close()


def test_phone_plate_search_map_and_timeline(browser: Browser, console: Console) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = _page(browser, console, PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    _sign_in(page, "ines")
    page.wait_for_function("window.witnessConsole.ready === true")
    _search_tab_for_the_incident(page, "PACE s.8 warrant 2025/118")
    _search(page, "plate", previous=0, fill={"#plate": "RK*"})
    assert page.locator("#results .card").count() == 4
    assert page.locator("#map circle.result").count() == 4 and page.locator("#map circle.fence").count() == 1
    assert page.locator("#timeline circle.mark").count() == 4
    page.screenshot(path=str(ARTIFACTS / "console-phone-results.png"), full_page=True)
    _open_first_result(page)
    page.screenshot(path=str(ARTIFACTS / "console-phone-detail.png"))
    page.click("#close-detail")

    before = float(page.input_value("#fence-lat"))
    page.locator("#map").scroll_into_view_if_needed()
    handle = page.locator("#map circle.fence-centre").bounding_box()
    assert handle is not None
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x, y - 40, steps=5)
    page.mouse.up()
    assert float(page.input_value("#fence-lat")) > before  # dragged north
    page.context.close()


def test_wrong_password_and_an_auditor_searching_are_refused(browser: Browser, console: Console) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = _page(browser, console, DESKTOP)
    _sign_in(page, "ines", "not the password at all")
    page.wait_for_function("document.getElementById('message').textContent.includes('Sign-in refused')")
    assert page.is_hidden("#app-view") and page.evaluate("sessionStorage.length") == 0

    _sign_in(page, "aude")
    page.wait_for_function("window.witnessConsole.ready === true")
    assert "has no cases" in page.inner_text("#message")
    page.click("[data-tab=search-tab]")
    for selector, value in {"#case-id": console.case_id, "#legal-basis": "curiosity", "#fence-lat": str(INCIDENT[0]),
                            "#fence-lon": str(INCIDENT[1]), "#fence-radius": "500",
                            "#fence-start": "2025-03-22T14:00:00", "#fence-end": "2025-03-22T15:00:00"}.items():
        page.fill(selector, value)
    _search(page, "plate", previous=0, fill={"#plate": "BA302OZ"})
    refusal = page.inner_text("#message")
    assert "refused" in refusal and "may not search" in refusal
    assert page.locator("#results .card").count() == 0
    page.screenshot(path=str(ARTIFACTS / "console-auditor-refused.png"), full_page=True)
    page.context.close()
