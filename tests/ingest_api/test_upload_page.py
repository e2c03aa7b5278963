"""The witness upload page in headless Chromium on a phone-sized screen (Playwright for Python, Debian chromium).

Screenshots go to test-artifacts/ (git-ignored). Needs `apt-get install chromium` and `npm ci` (tus-js-client).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from minio import Minio
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from infra.storage.evidence import SHA256_META, original_key
from tests.ingest_api.conftest import RunningApi

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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail("Debian chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(browser: Browser, api: RunningApi) -> Iterator[tuple[BrowserContext, Page]]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        geolocation={"latitude": 48.8570, "longitude": 2.3525, "accuracy": 15},
        permissions=["geolocation"],
        base_url=api.base_url,
    )
    page = context.new_page()
    yield context, page
    context.close()


def _check_receipt(page: Page, api: RunningApi, s3_client: Minio, files: list[Path]) -> dict[str, object]:
    receipt: dict[str, object] = page.evaluate("window.witness.receipt")
    expected = sorted(hashlib.sha256(path.read_bytes()).hexdigest() for path in files)
    listed = receipt["files"]
    assert isinstance(listed, list)
    assert sorted(str(entry["sha256"]) for entry in listed) == expected
    for sha256 in expected:
        stat = s3_client.stat_object(api.settings.s3.buckets.evidence, original_key(sha256))
        assert (stat.metadata or {}).get(SHA256_META) == sha256
    for sha256 in expected:
        assert page.locator("#receipt-files code", has_text=sha256).count() == 1
    return receipt


def test_a_witness_sends_several_photos_and_gets_a_receipt(
    phone: tuple[BrowserContext, Page], api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    _, page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"/e/{api.event_id}")
    page.wait_for_function("document.getElementById('event-name').textContent.includes('Test incident')")
    files = [shared_data / name for name in PHOTOS]
    page.set_input_files("#files", [str(path) for path in files])
    page.get_by_label(f"Caption for {files[0].name}").fill("the van, from the bus stop")
    page.check("#share-location")
    page.screenshot(path=str(ARTIFACTS / "upload-page-selected.png"), full_page=True)
    page.click("#send")
    page.wait_for_function("window.witness.done === true", timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-receipt.png"), full_page=True)
    receipt = _check_receipt(page, api, s3_client, files)
    assert page.locator("progress").evaluate_all("bars => bars.every(bar => bar.value === 100)")
    positions = receipt["positions"]
    assert isinstance(positions, list) and positions[0]["source"] == "device"
    captions = [entry["caption"] for entry in receipt["files"]]  # type: ignore[attr-defined]
    assert "the van, from the bus stop" in captions


def test_going_offline_mid_upload_resumes_when_back_online(
    phone: tuple[BrowserContext, Page], api: RunningApi, s3_client: Minio, shared_data: Path
) -> None:
    context, page = phone
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"/e/{api.event_id}?chunk=32768")
    files = [shared_data / "exif/android_nexus4_stale_gps.jpg", shared_data / "exif/iphone_5_rot180.jpg"]
    page.set_input_files("#files", [str(path) for path in files])
    page.click("#send")
    page.wait_for_function("window.witness.progress > 0.1", timeout=60_000)
    context.set_offline(True)
    page.wait_for_function("document.getElementById('network').textContent.includes('offline')")
    page.wait_for_function("window.witness.failures > 0", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-offline.png"), full_page=True)
    assert not page.evaluate("window.witness.done")
    context.set_offline(False)
    page.wait_for_function("window.witness.done === true", timeout=120_000)
    page.screenshot(path=str(ARTIFACTS / "upload-page-resumed.png"), full_page=True)
    _check_receipt(page, api, s3_client, files)
