"""A migrated SQLite metadata store with the governance services over it (no HTTP, no S3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from ingest_api.db import repository
from ingest_api.db.session import session_factory
from ingest_api.governance.approvals import FenceApprovals
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.auth import Governance
from ingest_api.governance.cases import CaseService
from ingest_api.governance.staff import StaffService


@pytest.fixture
def governance(migrated: Engine) -> Governance:
    sessions = session_factory(migrated)
    audit = AuditLog(migrated)
    return Governance(audit, StaffService(sessions=sessions, audit=audit), CaseService(sessions=sessions, audit=audit),
                      FenceApprovals(sessions=sessions, audit=audit))


def make_event(governance: Governance, *, hours_ago: float = 1.0, retention_days: int = 365) -> str:
    now = datetime.now(UTC)
    with governance.cases.sessions() as session:
        event = repository.create_event(session=session, name="Incident", lat=48.85, lon=2.35, radius_m=300,
                                        starts_at=now - timedelta(hours=hours_ago + 2),
                                        ends_at=now - timedelta(hours=hours_ago), retention_days=retention_days)
        return event.id
