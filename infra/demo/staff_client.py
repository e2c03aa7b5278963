"""The demo's staff side over HTTP: sign in, open (or find) the case and its appeal, run fenced searches.

Everything goes through the API a force would use (`/v1/auth/token`, `/v1/cases`, `/v1/events`,
`/v1/search/*`), so the demo exercises the same authentication, case checks and audit as the console.
Re-running the demo finds the case and the event it opened before instead of opening new ones.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from infra.demo.accounts import DemoAccount


class DemoApiError(Exception):
    """The API refused a demo request; the message carries its answer."""


def _json(response: httpx.Response, expected: int = 200) -> Any:
    if response.status_code != expected:
        raise DemoApiError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}: {response.text}")
    return response.json()


@dataclass(frozen=True)
class Incident:
    name: str
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime


def sign_in(base_url: str, account: DemoAccount) -> httpx.Client:
    """A client carrying the account's bearer token from a password login (close it when done)."""
    with httpx.Client(base_url=base_url, timeout=30) as anonymous:
        token = _json(anonymous.post("/v1/auth/token",
                                     json={"username": account.username, "password": account.password}))
    return httpx.Client(base_url=base_url, timeout=120,
                        headers={"Authorization": f"Bearer {token['access_token']}"})


def ensure_case(supervisor: httpx.Client, *, reference: str, title: str, investigator: str) -> str:
    """The case with `reference` (opened now if missing), with `investigator` assigned; returns its id."""
    cases = _json(supervisor.get("/v1/cases"))
    case = next((c for c in cases if c["reference"] == reference), None)
    if case is None:
        case = _json(supervisor.post("/v1/cases", json={"reference": reference, "title": title}), 201)
    _json(supervisor.put(f"/v1/cases/{case['id']}/investigators/{investigator}"))
    return str(case["id"])


def ensure_event(investigator: httpx.Client, *, case_id: str, incident: Incident) -> str:
    """The case's appeal named `incident.name` (opened now if missing); returns the event id."""
    events = _json(investigator.get("/v1/events"))
    event = next((e for e in events if e["name"] == incident.name and case_id in e["case_ids"]), None)
    if event is None:
        event = _json(investigator.post("/v1/events", json={
            "case_id": case_id, "name": incident.name, "lat": incident.lat, "lon": incident.lon,
            "radius_m": incident.radius_m, "starts_at": incident.starts_at.isoformat(),
            "ends_at": incident.ends_at.isoformat()}), 201)
    return str(event["id"])


def wait_for_indexes(client: httpx.Client, kinds: tuple[str, ...], *, timeout_s: float = 60.0) -> dict[str, str]:
    """Index versions served, once every kind in `kinds` is (the API loads them just after it starts)."""
    deadline = time.monotonic() + timeout_s
    while True:
        served: dict[str, str] = _json(client.get("/v1/search/indexes"))
        if all(kind in served for kind in kinds):
            return served
        if time.monotonic() > deadline:
            raise DemoApiError(f"the API serves {sorted(served)} after {timeout_s:.0f} s, not all of {kinds}")
        time.sleep(0.2)


def search(client: httpx.Client, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `/v1/search/<route>`; the answer's JSON (`SearchOut`)."""
    result: dict[str, Any] = _json(client.post(f"/v1/search/{route}", json=body))
    return result
