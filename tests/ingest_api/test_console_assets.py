"""The console's page, assets and config over HTTP, and its pure JavaScript (grouping, projection, tiles) run in
headless Chromium against synthetic inputs, so each rule is checked without any index or photo."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from ingest_api.governance.policy import Role
from tests.ingest_api.conftest import RunningApi
from tests.ingest_api.governance.helpers import staff_tokens
from tests.ingest_api.test_upload_page import CHROMIUM, FLAGS

pytestmark = pytest.mark.integration


def test_the_page_is_served_with_a_strict_policy(api: RunningApi) -> None:
    page = httpx.get(f"{api.base_url}/console", timeout=10)
    assert page.status_code == 200 and 'id="login-form"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    script = httpx.get(f"{api.base_url}/console/assets/console.js", timeout=10)
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{api.base_url}/console/assets/..%2Fsettings.py", timeout=10).status_code in (404, 422)


def test_the_config_needs_a_signed_in_staff_member(api: RunningApi) -> None:
    assert httpx.get(f"{api.base_url}/console/config", timeout=10).status_code == 401
    token = staff_tokens(api, "console-config")[Role.AUDITOR]
    config = httpx.get(f"{api.base_url}/console/config", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert config.status_code == 200
    assert config.json() == {"tile_url": "", "tile_attribution": "", "thumbnail_max_side": 512,
                             "fence_max_radius_m": api.settings.fence_max_radius_m,
                             "fence_max_window_s": api.settings.fence_max_window_s}


@pytest.fixture(scope="module")
def page(api: RunningApi) -> Iterator[Page]:
    if not CHROMIUM.is_file():
        pytest.fail("Debian chromium is needed for the browser tests: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        page = browser.new_page(base_url=api.base_url, bypass_csp=True)
        page.goto("/console")
        yield page
        browser.close()


def _run(page: Page, module: str, body: str, arg: Any = None) -> Any:
    return page.evaluate(f"async (arg) => {{ const m = await import('/console/assets/{module}'); {body} }}", arg)


def _hit(detection: str, photo: str, score: float, **extra: Any) -> dict[str, Any]:
    return {"detection_id": detection, "photo_id": photo, "score": score, "attributes": {}, **extra}


def test_near_duplicates_collapse_by_photo_sha_and_phash(page: Page) -> None:
    hits = [
        _hit("d1", "p1", 0.9), _hit("d2", "p1", 0.95),  # two detections in one photo
        _hit("d3", "p2", 0.5, photo_sha256="aa"), _hit("d4", "p3", 0.6, photo_sha256="aa", phash="f0f0"),
        _hit("d5", "p4", 0.7, phash="f0f0"),  # same phash as p3, hence (transitively) the same group as p2
        _hit("d6", "p5", 0.4, phash="0000000000000000"), _hit("d7", "p6", 0.3, phash="0000000000000000"),
    ]
    groups = _run(page, "results.js", "return m.groupHits(arg).map(g => [g.best.detection_id, g.count, g.photos]);",
                  hits)
    assert groups == [["d2", 2, 1], ["d5", 3, 3], ["d6", 1, 1], ["d7", 1, 1]]  # an all-zero phash groups nothing


def test_clock_provenance(page: Page) -> None:
    cases = [{"taken_at_utc": "2025-03-22T14:00:00Z", "time_trusted": True},
             {"taken_at_utc": "2025-03-22T14:00:00Z", "time_trusted": False},
             {"taken_at_utc": None, "time_trusted": False}]
    assert _run(page, "results.js", "return arg.map(m.timeProvenance);", cases) == ["trusted", "inferred", "unknown"]


def test_the_plane_is_to_scale_and_round_trips(page: Page) -> None:
    out = _run(page, "map.js", """
        const plane = m.projection({lat: 51.5, lon: -0.12, radius_m: 1000});
        const [x0, y0] = plane.toXY(51.5, -0.12);
        const east = 1000 / (6371008.8 * Math.PI / 180 * Math.cos(51.5 * Math.PI / 180));
        const [x1, y1] = plane.toXY(51.5, -0.12 + east);
        const [x2, y2] = plane.toXY(51.5 + 1000 / (6371008.8 * Math.PI / 180), -0.12);
        return {east_px: x1 - x0, north_px: y0 - y2, flat: y1 - y0, k: plane.k, back: plane.toLatLon(x1, y1)};""")
    assert out["east_px"] == pytest.approx(1000 * out["k"]) and out["north_px"] == pytest.approx(1000 * out["k"])
    assert out["flat"] == pytest.approx(0) and out["back"] == pytest.approx([51.5, -0.12 + 1000 / 69_310], rel=1e-3)


def test_a_configured_tile_server_is_drawn_under_the_points(page: Page) -> None:
    tiles = _run(page, "map.js", """
        const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        document.body.appendChild(svg);
        m.createMap(svg, {onMove() {}, onPick() {}}).render({fence: {lat: 51.5007, lon: -0.1246, radius_m: 800},
                                                          tileUrl: '/tiles/{z}/{x}/{y}.png'});
        const none = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        m.createMap(none, {onMove() {}, onPick() {}}).render({fence: {lat: 51.5007, lon: -0.1246, radius_m: 800}});
        const [cx, cy] = [svg.querySelector('.fence').cx.baseVal.value, svg.querySelector('.fence').cy.baseVal.value];
        const images = [...svg.querySelectorAll('image')].map(i => ({href: i.getAttribute('href'),
            x: +i.getAttribute('x'), y: +i.getAttribute('y'),
            w: +i.getAttribute('width'), h: +i.getAttribute('height')}));
        return {images, cx, cy, without: none.querySelectorAll('image').length};""")
    assert tiles["without"] == 0 and 1 <= len(tiles["images"]) <= 64
    assert all(image["href"].startswith("/tiles/") for image in tiles["images"])
    covering = [i for i in tiles["images"]
                if i["x"] <= tiles["cx"] <= i["x"] + i["w"] and i["y"] <= tiles["cy"] <= i["y"] + i["h"]]
    zoom, x, y = (int(part) for part in covering[0]["href"].removesuffix(".png").split("/")[2:])
    lat = math.radians(51.5007)  # the slippy-map tile holding the fence centre, computed independently
    expected_y = int((1 - math.asinh(math.tan(lat)) / math.pi) / 2 * 2**zoom)
    assert (x, y) == (int((-0.1246 + 180) / 360 * 2**zoom), expected_y)
