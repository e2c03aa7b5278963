"""The witness upload page in headless Chromium on a phone-sized screen (Playwright for Python, Debian chromium).

The issue's "done when": 20 real photos sent with the network cut mid-way, resumed, and a receipt whose SHA-256s
match the objects read back from S3. Also: captions, device location, a pin on the plan, contact details.
Screenshots go to test-artifacts/ (git-ignored). Needs `apt-get install chromium` and `npm ci` (tus-js-client).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from minio import Minio
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from infra.storage.config import S3Settings
from infra.storage.evidence import original_key
from ingest_api.db.models import WitnessContact
from ingest_api.db.session import build_engine, session_factory
from ingest_api.services import receipts
from tests.ingest_api.conftest import RunningApi, api_settings, create_test_event, running_api

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHOTOS = [
    "exif/gaia_nikon_p6000_DSCN0010.jpg",
    "exif/png_exif_chunk_gps.png",
    "exif/iphone_x_exif_in_webp.webp",
    "exif/gaia_nikon_p6000_DSCN0025.jpg",
]
# 20 distinct real photos, 15.5 MB: phone JPEGs of several MB, faces, vehicles, a PNG.
TWENTY = [
    *(f"exif/{name}" for name in (
        "android_nexus4_stale_gps.jpg", "iphone_6_bad_gpsdate.jpg", "android_nokia_8.3_5g.jpg",
        "windows_phone_lumia800.jpg", "flickr_sumo_museum_canon_a70.jpg", "gaia_nikon_p6000_DSCN0042.jpg",
        "google_pixel_IMG_20180725.jpg", "sony_hx5v_builtin_gps.jpg")),
    *(f"faces/{name}" for name in (
        "compreface_person_A_002.jpg", "obama_biden_2010_group.jpg", "compreface_group_5faces.jpg",
        "biden_official_portrait.jpg", "chris_pratt.jpeg", "codait_luciano.png")),
    *(f"vehicles/{name}" for name in (
        "br_iphone5_AZJ6991.jpg", "br_iphone5_JRK5336.jpg", "us_CWW2245_a.jpg", "eu_sk_BA302OZ_a.jpg",
        "my_iphone_WSQ3021.jpg", "us_UH1F0F_a.jpg")),
]
CHUNK = 256 * 1024  # small enough that cutting the network lands inside a multi-MB photo
METRES_PER_DEGREE = 111320  # the page's plan uses the same local equirectangular scale


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail("Debian chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_api(s3_settings: S3Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    """An API of this module's own, so other tests' requests never count against its per-IP rate window."""
    settings = api_settings(s3_settings, tmp_path_factory.mktemp("page-api"))
    with running_api(settings, create_test_event(settings)) as api:
        yield api


@pytest.fixture
def phone(browser: Browser, page_api: RunningApi) -> Iterator[tuple[BrowserContext, Page]]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": 48.8570, "longitude": 2.3525, "accuracy": 15},
        permissions=["geolocation"],
        base_url=page_api.base_url,
    )
    page = context.new_page()
    yield context, page
    context.close()


def _stored_sha256(s3_client: Minio, api: RunningApi, sha256: str) -> str:
    """SHA-256 of the original as read back from the evidence bucket (not its metadata: the bytes)."""
    response = s3_client.get_object(api.settings.s3.buckets.evidence, original_key(sha256))
    try:
        digest = hashlib.sha256()
        for block in response.stream(1024 * 1024):
            digest.update(block)
        return digest.hexdigest()
    finally:
        response.close()
        response.release_conn()


def _check_receipt(page: Page, api: RunningApi, s3_client: Minio, files: list[Path]) -> dict[str, object]:
    receipt: dict[str, object] = page.evaluate("window.witness.receipt")
    saved = json.loads(page.evaluate("fetch(document.getElementById('receipt-save').href).then(r => r.text())"))
    assert receipts.verify(saved, key=api.settings.receipt_key.get_secret_value().encode())  # what the witness keeps
    expected = sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in files)
    listed = receipt["files"]
    assert isinstance(listed, list)
    assert sorted(str(entry["sha256"]) for entry in listed) == expected
    assert {entry["status"] for entry in listed} == {"stored"}
    for sha256 in expected:
        assert _stored_sha256(s3_client, api, sha256) == sha256
        assert page.locator("#receipt-files code", has_text=sha256).count() == 1
    return receipt


def test_a_witness_sends_several_photos_and_gets_a_receipt(
    phone: tuple[BrowserContext, Page], page_api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    _, page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"/e/{page_api.event_id}")
    page.wait_for_function("document.getElementById('event-name').textContent.includes('Test incident')")
    files = [shared_data / name for name in PHOTOS]
    page.set_input_files("#files", [str(path) for path in files])
    page.get_by_label(f"Caption for {files[0].name}").fill("the van, from the bus stop")
    page.check("#share-location")
    page.screenshot(path=str(ARTIFACTS / "upload-page-selected.png"), full_page=True)
    page.click("#send")
    page.wait_for_function("window.witness.done === true", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-receipt.png"), full_page=True)
    receipt = _check_receipt(page, page_api, s3_client, files)
    assert page.locator("progress").evaluate_all("bars => bars.every(bar => bar.value === 100)")
    positions = receipt["positions"]
    assert isinstance(positions, list) and positions[0]["source"] == "device"
    captions = [entry["caption"] for entry in receipt["files"]]  # type: ignore[attr-defined]
    assert "the van, from the bus stop" in captions


def test_twenty_photos_survive_a_network_cut_and_match_what_s3_holds(
    phone: tuple[BrowserContext, Page], page_api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    """The issue's "done when", on a 390x844 phone screen."""
    context, page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"/e/{page_api.event_id}?chunk={CHUNK}")
    page.wait_for_function("document.getElementById('event-name').textContent.includes('Test incident')")
    files = [shared_data / name for name in TWENTY]
    assert len({hashlib.sha256(path.read_bytes()).hexdigest() for path in files}) == 20
    page.set_input_files("#files", [str(path) for path in files])
    page.click("#send")
    page.wait_for_function("window.witness.progress > 0.3", timeout=120_000)
    context.set_offline(True)
    page.wait_for_function("document.getElementById('network').textContent.includes('offline')")
    page.wait_for_function("window.witness.failures > 0", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-20-offline.png"), full_page=True)
    assert not page.evaluate("window.witness.done")
    context.set_offline(False)
    page.wait_for_function("window.witness.done === true", timeout=240_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-20-receipt.png"), full_page=True)
    receipt = _check_receipt(page, page_api, s3_client, files)
    assert len(receipt["files"]) == 20  # type: ignore[arg-type]
    assert page.locator("#message").text_content() == ""  # no file reported as not sent


def _metres(lat: float, lon: float, lat2: float, lon2: float) -> float:
    """Local equirectangular distance, good to well under a metre at these scales."""
    north = (lat - lat2) * METRES_PER_DEGREE
    east = (lon - lon2) * METRES_PER_DEGREE * math.cos(math.radians(lat2))
    return math.hypot(north, east)


def _tap_plan(page: Page, fx: float, fy: float) -> None:
    """Tap the plan at a fraction (fx, fy) of its width and height from its top-left corner."""
    box = page.locator("#plan").bounding_box()
    assert box is not None
    page.locator("#plan").tap(position={"x": fx * box["width"], "y": fy * box["height"]})


def test_a_witness_marks_a_place_and_leaves_contact_details(
    phone: tuple[BrowserContext, Page], page_api: RunningApi, shared_data: Path
) -> None:
    _, page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"/e/{page_api.event_id}")
    page.wait_for_function("document.getElementById('plan-scale').textContent.includes('2000 m across')")
    plan = httpx.get(f"{page_api.base_url}/v1/events/{page_api.event_id}").json()["plan"]
    # Test incident: 48.8566, 2.3522, radius 500 m. The plan's centre is snapped to a 250 m grid (the exact point is
    # not published) and the plan spans 4 radii, so (3/4, 1/4) is 500 m east and 500 m north of that centre.
    assert plan["radius_m"] == 500 and (plan["lat"], plan["lon"]) != (48.8566, 2.3522)
    assert _metres(plan["lat"], plan["lon"], 48.8566, 2.3522) <= 250 / math.sqrt(2) + 1
    _tap_plan(page, 0.75, 0.25)
    lat, lon = float(page.input_value("#pin-lat")), float(page.input_value("#pin-lon"))
    expected_lat = plan["lat"] + 500 / METRES_PER_DEGREE
    expected_lon = plan["lon"] + 500 / (METRES_PER_DEGREE * math.cos(math.radians(plan["lat"])))
    assert _metres(lat, lon, expected_lat, expected_lon) < 15
    assert page.get_attribute("#pin", "visibility") == "visible"
    page.fill("#pin-lat", str(plan["lat"]))  # typed coordinates move the pin: the plan's centre is its middle
    page.fill("#pin-lon", str(plan["lon"]))
    assert abs(float(page.get_attribute("#pin", "cx") or "nan") - 50) < 0.01
    assert abs(float(page.get_attribute("#pin", "cy") or "nan") - 50) < 0.01
    _tap_plan(page, 0.25, 0.5)  # 500 m west of the centre: this is what gets sent
    pin = {"lat": float(page.input_value("#pin-lat")), "lon": float(page.input_value("#pin-lon"))}
    page.set_input_files("#files", [str(shared_data / "vehicles/us_CYZ5139_a.jpg")])
    page.fill("#contact-name", "Zoë Témoin")
    page.fill("#contact-phone", "+33 6 11 22 33 44")
    page.click("#send")  # neither box ticked: nothing is sent, and the page says why
    page.wait_for_function("document.getElementById('message').textContent.includes('contact details')")
    page.check("#contact-consent")
    page.click("#send")
    page.wait_for_function("document.getElementById('message').textContent.includes('place you marked')")
    assert not page.evaluate("window.witness.done") and page.evaluate("window.witness.receipt") is None
    page.check("#share-pin")
    page.screenshot(path=str(ARTIFACTS / "upload-page-pin-contact.png"), full_page=True)
    page.click("#send")
    page.wait_for_function("window.witness.done === true", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-pin-receipt.png"), full_page=True)
    receipt = page.evaluate("window.witness.receipt")
    assert [(p["source"], p["lat"], p["lon"]) for p in receipt["positions"]] == [("pin", pin["lat"], pin["lon"])]
    assert abs(pin["lat"] - plan["lat"]) * METRES_PER_DEGREE < 15  # due west of the centre: same latitude
    assert page.locator("#receipt-positions", has_text="Place you marked").count() == 1
    assert page.is_visible("#receipt-contact") and "Témoin" not in str(receipt)
    engine = build_engine(page_api.settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            stored = session.get(WitnessContact, receipt["submission_id"])
            assert stored is not None and "Témoin".encode() not in stored.ciphertext
    finally:
        engine.dispose()
