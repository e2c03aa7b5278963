"""Cases without HTTP: who may create, assign, link and see what; event creation linked to a case; legal holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest_api.governance.auth import Governance
from ingest_api.governance.policy import PermissionDenied, Principal, Role
from ingest_api.governance.staff import SYSTEM, GovernanceConflict
from tests.ingest_api.governance.conftest import make_event

SAM = Principal("sam", Role.SUPERVISOR)


def _investigator(governance: Governance, name: str) -> Principal:
    issued = governance.staff.create(actor=SYSTEM, username=name, role=Role.INVESTIGATOR)
    return governance.staff.authenticate(issued.token)


def test_investigators_see_only_their_cases_and_events(governance: Governance) -> None:
    ines, omar = _investigator(governance, "ines"), _investigator(governance, "omar")
    with pytest.raises(PermissionDenied):
        governance.cases.create(actor=ines, reference="X", title="not mine to open")
    first = governance.cases.create(actor=SAM, reference="2026/1", title="Bridge")
    second = governance.cases.create(actor=SAM, reference="2026/2", title="Station")
    governance.cases.assign(actor=SAM, case_id=first.id, username="ines")
    governance.cases.link_event(actor=SAM, case_id=second.id, event_id=make_event(governance))
    ines = governance.staff.authenticate(governance.staff.issue_token(actor=SYSTEM, username="ines").token)
    now = datetime.now(UTC)
    mine = governance.cases.create_event(actor=ines, case_id=first.id, name="Appeal", lat=48.85, lon=2.35,
                                         radius_m=200, starts_at=now, ends_at=now + timedelta(hours=1),
                                         retention_days=30)
    assert [c.id for c in governance.cases.visible(actor=ines)] == [first.id]
    assert [e.id for e in governance.cases.visible_events(actor=ines)] == [mine.id]
    assert len(governance.cases.visible_events(actor=SAM)) == 2
    assert governance.cases.visible(actor=omar) == [] and governance.cases.visible_events(actor=omar) == []
    with pytest.raises(PermissionDenied, match="not assigned"):
        governance.cases.get(actor=ines, case_id=second.id)
    with pytest.raises(PermissionDenied, match="not assigned"):
        governance.cases.create_event(actor=ines, case_id=second.id, name="x", lat=0, lon=0, radius_m=1,
                                      starts_at=now, ends_at=now + timedelta(hours=1), retention_days=1)
    assert governance.cases.get(actor=ines, case_id=first.id).investigators == ("ines",)
    case_actions = [e.action for e in governance.audit.entries_for_case(first.id)]
    assert case_actions == ["case_create", "case_assign", "event_create", "case_view"]


def test_only_investigators_are_assigned(governance: Governance) -> None:
    governance.staff.create(actor=SYSTEM, username="aud", role=Role.AUDITOR)
    case = governance.cases.create(actor=SAM, reference="R", title="T")
    with pytest.raises(GovernanceConflict, match="only investigators"):
        governance.cases.assign(actor=SAM, case_id=case.id, username="aud")


def test_legal_holds_are_placed_and_cleared_by_supervisors_with_a_reason(governance: Governance) -> None:
    event_id = make_event(governance)
    with pytest.raises(PermissionDenied):
        governance.cases.place_hold(actor=Principal("root", Role.ADMIN), event_id=event_id, reason="x")
    with pytest.raises(GovernanceConflict, match="reason"):
        governance.cases.place_hold(actor=SAM, event_id=event_id, reason=" ")
    assert governance.cases.place_hold(actor=SAM, event_id=event_id, reason="order 17").legal_hold
    assert not governance.cases.clear_hold(actor=SAM, event_id=event_id).legal_hold
    assert [e.action for e in governance.audit.entries()][-2:] == ["legal_hold_place", "legal_hold_clear"]
