"""Malformed JSON bodies get a 422 with `{code, message, detail}`, never a 500, whatever the strings hold."""

from __future__ import annotations

import httpx
import pytest

from tests.ingest_api.conftest import RunningApi

pytestmark = pytest.mark.integration


def test_a_lone_surrogate_is_a_clear_422_not_a_500(api: RunningApi) -> None:
    # Valid JSON text whose string decodes to a lone surrogate: a str that UTF-8 cannot encode.
    raw = rb'{"username": "\ud800", "extra": 1}'
    response = httpx.post(
        f"{api.base_url}/v1/auth/token", content=raw, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "invalid_request" and "password" in body["message"]
    assert {tuple(item["loc"]) for item in body["detail"]} >= {("body", "password")}
