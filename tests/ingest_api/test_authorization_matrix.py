"""Every route x every role (and no token) against the real API: staff routes declare an action and default deny.

`ROUTES` is written out by hand on purpose: a new route fails `test_every_route_is_classified` until someone
decides whether it is a witness/public route or which staff action it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from ingest_api.app import create_app
from ingest_api.db import repository
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import CaseService
from ingest_api.governance.policy import Action, Principal, Role, is_allowed
from ingest_api.governance.staff import SYSTEM, StaffService
from ingest_api.settings import ApiSettings
from tests.ingest_api.conftest import RunningApi

pytestmark = pytest.mark.integration
PUBLIC = "public"
A = Action
ROUTES: dict[tuple[str, str], str] = {
    # witness side and operations: anonymous by design (witnesses hold only submission tokens)
    ("GET", "/openapi.json"): PUBLIC, ("GET", "/docs"): PUBLIC, ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC, ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # counters only; outside local mode it needs WITNESS_METRICS_TOKEN (not a role)
    ("POST", "/v1/events/{event_id}/photos"): PUBLIC, ("OPTIONS", "/v1/uploads/{upload_id}"): PUBLIC,
    ("OPTIONS", "/v1/uploads"): PUBLIC, ("POST", "/v1/uploads"): PUBLIC, ("HEAD", "/v1/uploads/{upload_id}"): PUBLIC,
    ("PATCH", "/v1/uploads/{upload_id}"): PUBLIC, ("DELETE", "/v1/uploads/{upload_id}"): PUBLIC,
    ("GET", "/v1/uploads/{upload_id}"): PUBLIC, ("POST", "/v1/events/{event_id}/submissions"): PUBLIC,
    ("GET", "/v1/receipts/{token}"): PUBLIC, ("DELETE", "/v1/receipts/{token}"): PUBLIC,
    ("POST", "/v1/receipts/{token}/positions"): PUBLIC, ("GET", "/v1/events/{event_id}"): PUBLIC,
    ("PUT", "/v1/receipts/{token}/contact"): PUBLIC, ("DELETE", "/v1/receipts/{token}/contact"): PUBLIC,
    ("GET", "/v1/events/{event_id}/qr.{kind}"): PUBLIC, ("GET", "/e/{event_id}"): PUBLIC,
    ("GET", "/assets/{name}"): PUBLIC, ("GET", "/assets/vendor/{name}"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,  # the login itself
    ("GET", "/console"): PUBLIC, ("GET", "/console/assets/{name}"): PUBLIC,  # the investigator page: no data in it
    ("GET", "/console/config"): A.OWN_SESSION,  # a connected deployment's tile URL may carry a provider key
    # staff
    ("GET", "/v1/auth/me"): A.OWN_SESSION, ("DELETE", "/v1/auth/token"): A.OWN_SESSION,
    ("GET", "/v1/staff"): A.MANAGE_USERS, ("POST", "/v1/staff"): A.MANAGE_USERS,
    ("PUT", "/v1/staff/{username}/role"): A.MANAGE_USERS, ("POST", "/v1/staff/{username}/tokens"): A.MANAGE_USERS,
    ("DELETE", "/v1/staff/{username}/tokens"): A.MANAGE_USERS,
    ("GET", "/v1/cases"): A.VIEW_CASE, ("POST", "/v1/cases"): A.CREATE_CASE,
    ("GET", "/v1/cases/{case_id}"): A.VIEW_CASE,
    ("PUT", "/v1/cases/{case_id}/investigators/{username}"): A.ASSIGN_CASE,
    ("DELETE", "/v1/cases/{case_id}/investigators/{username}"): A.ASSIGN_CASE,
    ("PUT", "/v1/cases/{case_id}/events/{event_id}"): A.ASSIGN_CASE,
    ("POST", "/v1/cases/{case_id}/fence-approvals"): A.APPROVE_FENCE,
    ("GET", "/v1/cases/{case_id}/events/{event_id}/contacts"): A.VIEW_WITNESS_CONTACT,
    ("GET", "/v1/events"): A.VIEW_CASE, ("POST", "/v1/events"): A.CREATE_EVENT,
    ("PUT", "/v1/events/{event_id}/legal-hold"): A.PLACE_LEGAL_HOLD,
    ("DELETE", "/v1/events/{event_id}/legal-hold"): A.PLACE_LEGAL_HOLD,
    ("PUT", "/v1/events/{event_id}/retention"): A.SET_RETENTION,
    ("GET", "/v1/audit"): A.READ_AUDIT, ("GET", "/v1/audit/verify"): A.VERIFY_INTEGRITY,
    ("GET", "/v1/cases/{case_id}/export"): A.EXPORT_CASE,
    ("GET", "/v1/cases/{case_id}/subjects"): A.VIEW_CASE,
    ("PUT", "/v1/cases/{case_id}/subjects/{detection_id}"): A.MARK_SUBJECT,
    ("DELETE", "/v1/cases/{case_id}/subjects/{detection_id}"): A.MARK_SUBJECT,
    ("POST", "/v1/search/faces"): A.SEARCH, ("POST", "/v1/search/vehicles"): A.SEARCH,
    ("POST", "/v1/search/vehicles/attributes"): A.SEARCH, ("POST", "/v1/search/plates"): A.SEARCH,
    ("POST", "/v1/search/similar"): A.SEARCH, ("GET", "/v1/search/indexes"): A.SEARCH,
}
ROLES: tuple[Role | None, ...] = (None, *Role)


def _declared(dependant: Dependant) -> set[str]:
    found = {str(action.value)} if (action := getattr(dependant.call, "declared_action", None)) else set()
    for sub in dependant.dependencies:
        found |= _declared(sub)
    return found


def app_routes() -> dict[tuple[str, str], set[str]]:
    """(method, path) -> the actions its dependencies declare, for every route the app serves."""
    app = create_app(ApiSettings.from_mapping({}))
    routes: dict[tuple[str, str], set[str]] = {}
    for context in iter_route_contexts(app.routes):
        dependant = getattr(context, "dependant", None)
        for method in sorted(context.methods or []):
            if method == "HEAD" and "GET" in (context.methods or []):
                continue  # Starlette's implicit HEAD of a GET route
            routes[(method, str(context.path))] = _declared(dependant) if dependant else set()
    return routes


def test_every_route_is_classified() -> None:
    routes = app_routes()
    assert set(routes) == set(ROUTES), "classify new routes in ROUTES (public witness route or staff action)"
    for key, expected in ROUTES.items():
        assert routes[key] == (set() if expected == PUBLIC else {expected}), key


@dataclass(frozen=True)
class Governed:
    tokens: dict[Role, str]
    case_id: str
    event_id: str
    staff: StaffService


@pytest.fixture(scope="module")
def governed(api: RunningApi) -> Iterator[Governed]:
    engine = build_engine(api.settings.effective_database_url)
    sessions, audit = session_factory(engine), AuditLog(engine)
    staff, cases = StaffService(sessions=sessions, audit=audit), CaseService(sessions=sessions, audit=audit)
    tokens = {role: staff.create(actor=SYSTEM, username=f"matrix-{role.value}", role=role).token for role in Role}
    supervisor = Principal("matrix-supervisor", Role.SUPERVISOR)
    case = cases.create(actor=supervisor, reference="matrix/1", title="Authorization matrix")
    cases.assign(actor=supervisor, case_id=case.id, username="matrix-investigator")
    now = datetime.now(UTC)
    with sessions() as session:
        event = repository.create_event(session=session, name="Matrix", lat=48.85, lon=2.35, radius_m=100,
                                        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    cases.link_event(actor=supervisor, case_id=case.id, event_id=event.id)
    yield Governed(tokens, case.id, event.id, staff)
    engine.dispose()


def _url(api: RunningApi, governed: Governed, path: str) -> str:
    values = {"event_id": governed.event_id, "case_id": governed.case_id, "username": "nobody-here",
              "token": "no-such-token", "upload_id": "no-such-upload", "kind": "svg", "name": "upload.js",
              "detection_id": "no-such-detection"}
    return api.base_url + path.format(**values)


def _call(method: str, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return httpx.request(method, url, headers=headers, timeout=60, **body)


@pytest.fixture(scope="module")
def declared_statuses(api: RunningApi) -> dict[tuple[str, str], set[int]]:
    """Status codes each operation of the served OpenAPI schema declares."""
    paths = httpx.get(f"{api.base_url}/openapi.json", timeout=30).json()["paths"]
    return {(method.upper(), path): {int(status) for status in operation["responses"]}
            for path, operations in paths.items() for method, operation in operations.items()}


@pytest.mark.parametrize(("method", "path"), sorted(ROUTES), ids=lambda v: str(v))
def test_route_by_role(api: RunningApi, governed: Governed, declared_statuses: dict[tuple[str, str], set[int]],
                       method: str, path: str) -> None:
    expected = ROUTES[(method, path)]
    for role in ROLES:
        token = None
        if role is not None:
            # logging out revokes the token it is sent with: give that call one of its own
            token = (governed.staff.issue_token(actor=SYSTEM, username=f"matrix-{role.value}").token
                     if (method, path) == ("DELETE", "/v1/auth/token") else governed.tokens[role])
        status = _call(method, _url(api, governed, path), token).status_code
        where = f"{method} {path} as {role.value if role else 'anonymous'}: {status}"
        if (method, path) in declared_statuses:  # clients generated from the schema must be able to expect it
            assert status in declared_statuses[(method, path)], f"{where} is not declared in the OpenAPI schema"
        if expected == PUBLIC:
            assert status not in (401, 403) and status < 500, where
        elif role is None:
            assert status == 401, where
        elif is_allowed(role, expected):
            assert status not in (401, 403) and status < 500, where
        else:
            assert status == 403, where


def test_investigator_outside_the_case_is_refused(api: RunningApi, governed: Governed) -> None:
    outsider = governed.staff.create(actor=SYSTEM, username="matrix-outsider", role=Role.INVESTIGATOR).token
    for method, path in [("GET", "/v1/cases/{case_id}"), ("GET", "/v1/cases/{case_id}/export"),
                         ("GET", "/v1/cases/{case_id}/subjects"),
                         ("PUT", "/v1/cases/{case_id}/subjects/{detection_id}"),
                         ("DELETE", "/v1/cases/{case_id}/subjects/{detection_id}")]:
        assert _call(method, _url(api, governed, path), outsider).status_code == 403, path
    created = httpx.post(f"{api.base_url}/v1/events", headers={"Authorization": f"Bearer {outsider}"}, json={
        "case_id": governed.case_id, "name": "x", "lat": 1, "lon": 1, "radius_m": 10,
        "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-01-01T01:00:00Z"})
    assert created.status_code == 403
    plates = httpx.post(f"{api.base_url}/v1/search/plates", headers={"Authorization": f"Bearer {outsider}"},
                        json={"case_id": governed.case_id, "legal_basis": "art. 1", "plate": "AB123"})
    assert plates.status_code == 403
    listed = httpx.get(f"{api.base_url}/v1/events", headers={"Authorization": f"Bearer {outsider}"}).json()
    assert listed == []
