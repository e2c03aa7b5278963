"""Who may do what: roles, the permission table (default deny), case scoping, fence limits and API tokens.

Pure functions only; the HTTP layer maps `PermissionDenied` to 403 and `ApprovalRequired` to 409/403.

Separation of duties is deliberate: admins run the system (users, events, retention, erasure) but cannot search or
see photos; auditors read and verify the audit trail but cannot search; investigators search only their cases;
supervisors approve what goes beyond routine (large fences, witness contact details, legal holds).

Staff credentials are opaque API tokens (32 random bytes), stored as their SHA-256 and compared in constant time.
A slow password hash (argon2) exists to make guessing low-entropy human secrets expensive; a 256-bit random token
cannot be guessed, so argon2 would only cost CPU on every request and forbid looking a token up by its digest.
If staff passwords are ever kept (rather than an identity provider issuing tokens), those take argon2-cffi.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

TOKEN_PREFIX = "wst_"  # recognisable in logs and by secret scanners


class Role(StrEnum):
    INVESTIGATOR = "investigator"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Action(StrEnum):
    SEARCH = "search"
    VIEW_PHOTO = "view_photo"
    EXPORT_CASE = "export_case"
    CREATE_CASE = "create_case"
    ASSIGN_CASE = "assign_case"
    APPROVE_FENCE = "approve_fence"
    VIEW_WITNESS_CONTACT = "view_witness_contact"
    PLACE_LEGAL_HOLD = "place_legal_hold"
    READ_AUDIT = "read_audit"
    VERIFY_INTEGRITY = "verify_integrity"
    MANAGE_EVENTS = "manage_events"
    MANAGE_USERS = "manage_users"
    SET_RETENTION = "set_retention"
    ERASE = "erase"
    VIEW_CASE = "view_case"  # a case's details and linked events (investigators: their cases only)
    CREATE_EVENT = "create_event"  # open an appeal for witnesses, linked to a case (investigators: their cases)
    OWN_SESSION = "own_session"  # who am I, log out: any authenticated staff member
    MARK_SUBJECT = "mark_subject"  # name detections as the case's subject: left unblurred in its court bundle


_I, _S, _AU, _AD = Role.INVESTIGATOR, Role.SUPERVISOR, Role.AUDITOR, Role.ADMIN
PERMISSIONS: Mapping[Action, frozenset[Role]] = {
    Action.SEARCH: frozenset({_I, _S}),
    Action.VIEW_PHOTO: frozenset({_I, _S}),
    Action.EXPORT_CASE: frozenset({_I, _S}),
    Action.CREATE_CASE: frozenset({_S}),
    Action.ASSIGN_CASE: frozenset({_S}),
    Action.APPROVE_FENCE: frozenset({_S}),
    Action.VIEW_WITNESS_CONTACT: frozenset({_S}),
    Action.PLACE_LEGAL_HOLD: frozenset({_S}),
    Action.READ_AUDIT: frozenset({_AU}),
    Action.VERIFY_INTEGRITY: frozenset({_AU, _AD}),
    Action.MANAGE_EVENTS: frozenset({_S, _AD}),
    Action.MANAGE_USERS: frozenset({_AD}),
    Action.SET_RETENTION: frozenset({_AD}),
    Action.ERASE: frozenset({_AD}),
    Action.VIEW_CASE: frozenset({_I, _S}),
    Action.CREATE_EVENT: frozenset({_I, _S}),
    Action.OWN_SESSION: frozenset({_I, _S, _AU, _AD}),
    Action.MARK_SUBJECT: frozenset({_I, _S}),
}
# Actions touching a case's photos are further limited to the cases a principal may access.
CASE_SCOPED: frozenset[Action] = frozenset(
    {Action.SEARCH, Action.VIEW_PHOTO, Action.EXPORT_CASE, Action.VIEW_CASE, Action.CREATE_EVENT, Action.MARK_SUBJECT}
)


class PermissionDenied(Exception):
    """The principal's role, or its case assignments, do not allow the action."""


class InvalidSearch(ValueError):
    """A search request misses what every search must carry (case, legal basis, a sane fence)."""


class ApprovalRequired(Exception):
    """The fence exceeds the configured limits and carries no valid supervisor approval."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("supervisor approval required: " + "; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    assigned_cases: frozenset[str] = frozenset()


def is_allowed(role: Role | str | None, action: Action | str) -> bool:
    """Default deny: unknown roles, unknown actions and no role at all are refused."""
    if role is None:
        return False
    try:
        known_role, known_action = Role(role), Action(action)
    except ValueError:
        return False
    return known_role in PERMISSIONS.get(known_action, frozenset())


def require(principal: Principal | None, action: Action) -> Principal:
    if principal is None or not is_allowed(principal.role, action):
        who = f"{principal.user_id} ({principal.role})" if principal else "an anonymous caller"
        raise PermissionDenied(f"{who} may not {action.value}")
    return principal


def can_access_case(principal: Principal, case_id: str) -> bool:
    """Supervisors oversee every case; investigators only those assigned to them; nobody else sees case photos."""
    if principal.role is Role.SUPERVISOR:
        return True
    return principal.role is Role.INVESTIGATOR and case_id in principal.assigned_cases


def visible_events(principal: Principal, case_events: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Event ids whose photos the principal may see: those linked to the cases it may access."""
    return frozenset(e for case, events in case_events.items() if can_access_case(principal, case) for e in events)


def require_case(principal: Principal, action: Action, case_id: str) -> None:
    require(principal, action)
    if action in CASE_SCOPED and not can_access_case(principal, case_id):
        raise PermissionDenied(f"{principal.user_id} is not assigned to case {case_id!r}")


@dataclass(frozen=True)
class FenceLimits:
    max_radius_m: float = 2_000.0
    max_window_s: float = 24 * 3600.0


@dataclass(frozen=True)
class Fence:
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class FenceApproval:
    approved_by: Principal
    case_id: str
    max_radius_m: float
    max_window_s: float


def fence_excess(fence: Fence, limits: FenceLimits) -> list[str]:
    """Why a fence needs approval (empty when within limits); raises InvalidSearch for a malformed fence."""
    if not (-90 <= fence.lat <= 90 and -180 <= fence.lon <= 180):
        raise InvalidSearch(f"fence centre ({fence.lat}, {fence.lon}) is not a WGS84 position")
    if fence.radius_m <= 0:
        raise InvalidSearch(f"fence radius must be positive, got {fence.radius_m} m")
    window = (fence.ends_at - fence.starts_at).total_seconds()
    if window <= 0:
        raise InvalidSearch(f"fence window must end after it starts ({fence.starts_at} .. {fence.ends_at})")
    reasons = []
    if fence.radius_m > limits.max_radius_m:
        reasons.append(f"radius {fence.radius_m:.0f} m exceeds {limits.max_radius_m:.0f} m")
    if window > limits.max_window_s:
        reasons.append(f"window {window / 3600:.1f} h exceeds {limits.max_window_s / 3600:.1f} h")
    return reasons


def authorize_search(
    principal: Principal,
    *,
    case_id: str,
    legal_basis: str,
    fence: Fence,
    limits: FenceLimits,
    approval: FenceApproval | None = None,
) -> None:
    """Every check a search must pass before it runs (and is audited); raises the first failure."""
    if not case_id.strip():
        raise InvalidSearch("a search needs a case id")
    if not legal_basis.strip():
        raise InvalidSearch("a search needs a legal basis (free text, e.g. the order or article it relies on)")
    require_case(principal, Action.SEARCH, case_id)
    reasons = fence_excess(fence, limits)
    if not reasons:
        return
    if approval is None:
        raise ApprovalRequired(reasons)
    approver = approval.approved_by
    window = (fence.ends_at - fence.starts_at).total_seconds()
    if not is_allowed(approver.role, Action.APPROVE_FENCE):
        raise ApprovalRequired([*reasons, f"{approver.user_id} ({approver.role}) cannot approve fences"])
    if approver.user_id == principal.user_id:
        raise ApprovalRequired([*reasons, "a fence cannot be approved by the person searching (four eyes)"])
    if approval.case_id != case_id or fence.radius_m > approval.max_radius_m or window > approval.max_window_s:
        raise ApprovalRequired([*reasons, "the approval does not cover this case or fence"])


def new_token() -> tuple[str, str]:
    """A fresh API token for the holder, and the digest to store (the token itself is never stored)."""
    token = TOKEN_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_digest: str) -> bool:
    return hmac.compare_digest(token_digest(token), stored_digest)
