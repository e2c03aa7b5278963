"""Builds the governance services from the API settings (one place for the API lifespan and the CLI)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ingest_api.governance.approvals import FenceApprovals
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.auth import Governance
from ingest_api.governance.cases import CaseService
from ingest_api.governance.staff import StaffService
from ingest_api.settings import ApiSettings


def build_governance(settings: ApiSettings, *, sessions: sessionmaker[Session], engine: Engine) -> Governance:
    audit = AuditLog(engine)
    staff = StaffService(
        sessions=sessions,
        audit=audit,
        token_ttl=timedelta(seconds=settings.staff_login_ttl_s),
        issued_token_ttl=timedelta(days=settings.staff_issued_token_ttl_days),
    )
    return Governance(audit=audit, staff=staff, cases=CaseService(sessions=sessions, audit=audit),
                      approvals=FenceApprovals(sessions=sessions, audit=audit))
