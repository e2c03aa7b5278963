"""Fences beyond the limits: refused, unless another person, a supervisor, approved them for that case."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingest_api.db.session import build_engine
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Role
from ingest_api.governance.search_gate import enclosing_circle
from tests.ingest_api.conftest import RunningApi
from tests.ingest_api.governance.helpers import client, staff_tokens

pytestmark = pytest.mark.integration


def _search(case_id: str, radius_m: float, approval_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "fence": {"circle": {"lat": 48.85, "lon": 2.35, "radius_m": radius_m}, "start": "2015-11-13T20:00:00Z",
                  "end": "2015-11-13T23:00:00Z", "include_unplaced": False, "include_untimed": False},
        "case_id": case_id, "legal_basis": "art. 60 CPP, order 2015/113", "plate": "GH417KT",
    }
    return body | ({"approval_id": approval_id} if approval_id else {})


def test_a_wide_fence_needs_a_supervisors_approval_for_that_case(api: RunningApi) -> None:
    tokens = staff_tokens(api, "fence")
    wide = api.settings.fence_max_radius_m * 5
    with client(api, tokens[Role.SUPERVISOR]) as sup, client(api, tokens[Role.INVESTIGATOR]) as ines:
        cases = [sup.post("/v1/cases", json={"reference": f"fence/{n}", "title": "wide"}).json()["id"] for n in (1, 2)]
        for case_id in cases:
            assert sup.put(f"/v1/cases/{case_id}/investigators/fence-investigator").status_code == 200

        refused = ines.post("/v1/search/plates", json=_search(cases[0], wide))
        assert refused.status_code == 403 and refused.json()["code"] == "approval_required"
        assert "exceeds" in refused.json()["message"]
        assert ines.post(f"/v1/cases/{cases[0]}/fence-approvals",
                         json={"max_radius_m": wide, "max_window_s": 86400, "reason": "r"}).status_code == 403

        granted = sup.post(f"/v1/cases/{cases[0]}/fence-approvals", json={
            "max_radius_m": wide, "max_window_s": 6 * 3600, "reason": "attacks across several arrondissements"})
        assert granted.status_code == 201, granted.text
        approval = granted.json()["id"]

        # Past the gate (no index is published in this test API, hence 503 rather than results).
        approved = ines.post("/v1/search/plates", json=_search(cases[0], wide, approval))
        assert approved.status_code == 503, approved.text
        for body, why in ((_search(cases[1], wide, approval), "does not cover this case"),
                          (_search(cases[0], wide * 2, approval), "does not cover"),
                          (_search(cases[0], wide, "no-such-approval"), "unknown or expired")):
            response = ines.post("/v1/search/plates", json=body)
            assert response.status_code == 403 and why in response.json()["message"], response.text

    engine = build_engine(api.settings.effective_database_url)
    entries = AuditLog(engine).entries_for_case(cases[0])
    engine.dispose()
    grants = [entry for entry in entries if entry.action == "fence_approval"]
    assert len(grants) == 1 and grants[0].actor == "fence-supervisor"
    assert json.loads(grants[0].parameters)["approval_id"] == approval


def test_a_polygon_is_sized_by_its_enclosing_circle() -> None:
    # A ~2 km square around Paris centre, and one straddling the antimeridian (Fiji): centre and radius sane.
    lat, lon, radius = enclosing_circle([(48.85, 2.34), (48.85, 2.37), (48.87, 2.37), (48.87, 2.34)])
    assert (lat, lon) == pytest.approx((48.86, 2.355), abs=1e-3) and 1_500 < radius < 1_600  # half the ~3.1 km diagonal
    lat, lon, radius = enclosing_circle([(-17.0, 179.99), (-17.0, -179.99), (-17.01, -179.99), (-17.01, 179.99)])
    assert abs(lon) == pytest.approx(180.0, abs=1e-3) and radius < 2_000


def test_a_wide_polygon_needs_approval_too(api: RunningApi) -> None:
    tokens = staff_tokens(api, "polygon")
    with client(api, tokens[Role.SUPERVISOR]) as sup, client(api, tokens[Role.INVESTIGATOR]) as ines:
        case_id = sup.post("/v1/cases", json={"reference": "polygon/1", "title": "wide"}).json()["id"]
        assert sup.put(f"/v1/cases/{case_id}/investigators/polygon-investigator").status_code == 200
        body = _search(case_id, 100)
        del body["fence"]["circle"]
        body["fence"]["polygon"] = [[48.7, 2.2], [48.7, 2.5], [49.0, 2.5], [49.0, 2.2]]  # ~17 km across
        refused = ines.post("/v1/search/plates", json=body)
        assert refused.status_code == 403 and refused.json()["code"] == "approval_required", refused.text
        body["fence"]["polygon"] = [[48.85, 2.34], [48.85, 2.35], [48.86, 2.35]]
        assert ines.post("/v1/search/plates", json=body).status_code == 503  # within limits: past the gate
