"""Public event info, upload link and QR codes; consented positions with their source."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.conftest import RunningApi, open_submission

pytestmark = pytest.mark.integration


def test_public_event_has_its_upload_link(api: RunningApi) -> None:
    document = httpx.get(f"{api.base_url}/v1/events/{api.event_id}").json()
    assert document["accepts_uploads"] and document["upload_link"].endswith(f"/e/{api.event_id}")
    assert "lat" not in document  # the page does not need the investigators' exact incident point


@pytest.mark.parametrize(("kind", "magic"), [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_qr_codes_encode_the_link(api: RunningApi, kind: str, magic: bytes) -> None:
    response = httpx.get(f"{api.base_url}/v1/events/{api.event_id}/qr.{kind}")
    assert response.status_code == 200 and response.content.startswith(magic)


def test_unknown_event_is_404(api: RunningApi) -> None:
    assert httpx.get(f"{api.base_url}/v1/events/nope/qr.svg").json()["code"] == "unknown_event"


def test_positions_need_consent_and_keep_their_source(api: RunningApi) -> None:
    opened = open_submission(api)
    url = f"{api.base_url}/v1/receipts/{opened['submission_token']}/positions"
    refused = httpx.post(url, json={"source": "device", "lat": 48.86, "lon": 2.35, "consent": False})
    assert refused.status_code == 422 and refused.json()["code"] == "consent_required"
    device = {"source": "device", "lat": 48.86, "lon": 2.35, "accuracy_m": 12, "captured_at": "2026-11-23T10:00:00Z"}
    assert httpx.post(url, json={**device, "consent": True}).status_code == 201
    assert httpx.post(url, json={"source": "pin", "lat": 48.87, "lon": 2.36, "consent": True}).status_code == 201
    assert httpx.post(url, json={"source": "exif", "lat": 1, "lon": 1, "consent": True}).status_code == 422
    receipt = httpx.get(f"{api.base_url}{opened['receipt_url']}").json()
    assert [p["source"] for p in receipt["positions"]] == ["device", "pin"]
    assert httpx.delete(f"{api.base_url}{opened['receipt_url']}").status_code == 200
    assert httpx.get(f"{api.base_url}{opened['receipt_url']}").json()["positions"] == []
