"""Supervisors' approvals of search fences beyond the configured limits (four eyes, per case, time-limited).

A supervisor grants an approval for one case up to a radius and a window length; an investigator then names it
(`approval_id`) in a search whose fence exceeds the limits. `policy.authorize_search` decides whether it covers
the search; granting and every use are audited.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Action, FenceApproval, Principal, Role, require
from ingest_api.governance.staff import GovernanceNotFound, as_utc
from ingest_api.governance.tables import Case, FenceApprovalGrant


@dataclass(frozen=True)
class ApprovalView:
    id: str
    case_id: str
    approved_by: str
    max_radius_m: float
    max_window_s: float
    reason: str
    approved_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class FenceApprovals:
    sessions: sessionmaker[Session]
    audit: AuditLog

    def grant(self, *, actor: Principal, case_id: str, max_radius_m: float, max_window_s: float, reason: str,
              valid_for: timedelta) -> ApprovalView:
        require(actor, Action.APPROVE_FENCE)
        if not reason.strip():
            raise ValueError("an approval needs a reason")
        now = datetime.now(UTC)
        with self.sessions() as session:
            if session.get(Case, case_id) is None:
                raise GovernanceNotFound(f"no case {case_id!r}")
            row = FenceApprovalGrant(
                id=str(uuid.uuid4()), case_id=case_id, approved_by=actor.user_id, approver_role=actor.role.value,
                max_radius_m=max_radius_m, max_window_s=max_window_s, reason=reason, approved_at=now,
                expires_at=now + valid_for,
            )
            session.add(row)
            session.commit()
            view = _view(row)
        self.audit.append(AuditRecord(
            actor=actor.user_id, role=actor.role.value, action="fence_approval", case_id=case_id,
            parameters={"approval_id": view.id, "max_radius_m": max_radius_m, "max_window_s": max_window_s,
                        "reason": reason, "expires_at": view.expires_at.isoformat()}))
        return view

    def valid(self, approval_id: str, *, at: datetime | None = None) -> FenceApproval | None:
        """The approval as the policy sees it, or None when unknown or expired."""
        with self.sessions() as session:
            row = session.get(FenceApprovalGrant, approval_id)
            if row is None or as_utc(row.expires_at) <= (at or datetime.now(UTC)):
                return None
            return FenceApproval(
                approved_by=Principal(row.approved_by, Role(row.approver_role)), case_id=row.case_id,
                max_radius_m=row.max_radius_m, max_window_s=row.max_window_s,
            )


def _view(row: FenceApprovalGrant) -> ApprovalView:
    return ApprovalView(row.id, row.case_id, row.approved_by, row.max_radius_m, row.max_window_s, row.reason,
                        as_utc(row.approved_at), as_utc(row.expires_at))
