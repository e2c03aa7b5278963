"""Roles, the permission matrix, case scoping, fence approval and tokens (pure, no HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest_api.governance.policy import (
    PERMISSIONS,
    Action,
    ApprovalRequired,
    Fence,
    FenceApproval,
    FenceLimits,
    InvalidSearch,
    PermissionDenied,
    Principal,
    Role,
    authorize_search,
    can_access_case,
    is_allowed,
    new_token,
    require,
    require_case,
    token_digest,
    token_matches,
    visible_events,
)

# Written out independently of PERMISSIONS on purpose: a change to the table must change this test too.
# Columns: investigator, supervisor, auditor, admin.
EXPECTED: dict[str, tuple[bool, bool, bool, bool]] = {
    "search": (True, True, False, False),
    "view_photo": (True, True, False, False),
    "export_case": (True, True, False, False),
    "create_case": (False, True, False, False),
    "assign_case": (False, True, False, False),
    "approve_fence": (False, True, False, False),
    "view_witness_contact": (False, True, False, False),
    "place_legal_hold": (False, True, False, False),
    "read_audit": (False, False, True, False),
    "verify_integrity": (False, False, True, True),
    "manage_events": (False, True, False, True),
    "manage_users": (False, False, False, True),
    "set_retention": (False, False, False, True),
    "erase": (False, False, False, True),
    "view_case": (True, True, False, False),
    "create_event": (True, True, False, False),
    "own_session": (True, True, True, True),
    "mark_subject": (True, True, False, False),
}
ROLES = (Role.INVESTIGATOR, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN)
T0 = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
LIMITS = FenceLimits(max_radius_m=1000, max_window_s=6 * 3600)
ALICE = Principal("alice", Role.INVESTIGATOR, frozenset({"case-1"}))
SUPER = Principal("sam", Role.SUPERVISOR)
SUPER2 = Principal("sue", Role.SUPERVISOR)


def _fence(radius_m: float = 500, hours: float = 2) -> Fence:
    return Fence(48.85, 2.35, radius_m, T0, T0 + timedelta(hours=hours))


def test_the_matrix_covers_every_action_and_role() -> None:
    assert set(EXPECTED) == {a.value for a in Action} == {a.value for a in PERMISSIONS}
    assert [r.value for r in Role] == [r.value for r in ROLES]


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
@pytest.mark.parametrize("role", ROLES, ids=lambda r: r.value)
def test_role_action_matrix(role: Role, action: Action) -> None:
    expected = EXPECTED[action.value][ROLES.index(role)]
    assert is_allowed(role, action) is expected
    principal = Principal("p", role)
    if expected:
        assert require(principal, action) is principal
    else:
        with pytest.raises(PermissionDenied, match=f"may not {action.value}"):
            require(principal, action)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_no_token_and_unknown_roles_are_denied(action: Action) -> None:
    assert not is_allowed(None, action) and not is_allowed("root", action) and not is_allowed("ADMIN", action)
    with pytest.raises(PermissionDenied, match="anonymous"):
        require(None, action)
    assert not is_allowed(Role.ADMIN, "drop_tables")


def test_investigators_see_only_their_cases() -> None:
    links = {"case-1": frozenset({"ev-a", "ev-b"}), "case-2": frozenset({"ev-c"})}
    assert visible_events(ALICE, links) == {"ev-a", "ev-b"}
    assert visible_events(SUPER, links) == {"ev-a", "ev-b", "ev-c"}
    assert visible_events(Principal("aud", Role.AUDITOR), links) == frozenset()
    assert visible_events(Principal("adm", Role.ADMIN, frozenset({"case-1"})), links) == frozenset()
    assert can_access_case(ALICE, "case-1") and not can_access_case(ALICE, "case-2")
    require_case(ALICE, Action.VIEW_PHOTO, "case-1")
    with pytest.raises(PermissionDenied, match="not assigned to case 'case-2'"):
        require_case(ALICE, Action.EXPORT_CASE, "case-2")


def test_search_needs_case_legal_basis_and_a_sane_fence() -> None:
    authorize_search(ALICE, case_id="case-1", legal_basis="art. 60 CPP", fence=_fence(), limits=LIMITS)
    with pytest.raises(InvalidSearch, match="legal basis"):
        authorize_search(ALICE, case_id="case-1", legal_basis="  ", fence=_fence(), limits=LIMITS)
    with pytest.raises(InvalidSearch, match="case id"):
        authorize_search(ALICE, case_id="", legal_basis="x", fence=_fence(), limits=LIMITS)
    with pytest.raises(PermissionDenied, match="case-9"):
        authorize_search(ALICE, case_id="case-9", legal_basis="x", fence=_fence(), limits=LIMITS)
    with pytest.raises(InvalidSearch, match="end after"):
        authorize_search(ALICE, case_id="case-1", legal_basis="x", fence=_fence(hours=-1), limits=LIMITS)
    with pytest.raises(InvalidSearch, match="WGS84"):
        bad = Fence(91, 0, 100, T0, T0 + timedelta(hours=1))
        authorize_search(ALICE, case_id="case-1", legal_basis="x", fence=bad, limits=LIMITS)


def test_large_fences_need_another_supervisors_approval() -> None:
    big = _fence(radius_m=5000, hours=12)
    with pytest.raises(ApprovalRequired) as caught:
        authorize_search(ALICE, case_id="case-1", legal_basis="x", fence=big, limits=LIMITS)
    assert len(caught.value.reasons) == 2 and "radius 5000 m exceeds 1000 m" in caught.value.reasons[0]
    ok = FenceApproval(SUPER, "case-1", max_radius_m=5000, max_window_s=12 * 3600)
    authorize_search(ALICE, case_id="case-1", legal_basis="x", fence=big, limits=LIMITS, approval=ok)
    refusals = {
        "cannot approve": FenceApproval(Principal("bob", Role.INVESTIGATOR), "case-1", 5000, 12 * 3600),
        "does not cover": FenceApproval(SUPER, "case-1", 4000, 12 * 3600),
    }
    for message, approval in refusals.items():
        with pytest.raises(ApprovalRequired, match=message):
            authorize_search(ALICE, case_id="case-1", legal_basis="x", fence=big, limits=LIMITS, approval=approval)
    with pytest.raises(ApprovalRequired, match="four eyes"):
        own = FenceApproval(SUPER, "case-1", 5000, 12 * 3600)
        authorize_search(SUPER, case_id="case-1", legal_basis="x", fence=big, limits=LIMITS, approval=own)
    other = FenceApproval(SUPER2, "case-1", 5000, 12 * 3600)
    authorize_search(SUPER, case_id="case-1", legal_basis="x", fence=big, limits=LIMITS, approval=other)


def test_tokens_are_random_stored_hashed_and_compared() -> None:
    token, digest = new_token()
    other, _ = new_token()
    assert token.startswith("wst_") and len(token) == 4 + 43 and token != other
    assert digest == token_digest(token) and token not in digest and len(digest) == 64
    assert token_matches(token, digest) and not token_matches(other, digest) and not token_matches("", digest)
