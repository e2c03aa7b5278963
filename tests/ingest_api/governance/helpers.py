"""Staff set-up on the running test API's database, shared by the HTTP governance tests."""

from __future__ import annotations

import httpx

from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Role
from ingest_api.governance.staff import SYSTEM, StaffService
from tests.ingest_api.conftest import RunningApi


def staff_tokens(api: RunningApi, prefix: str) -> dict[Role, str]:
    """One fresh account per role (`<prefix>-<role>`), with its token."""
    engine = build_engine(api.settings.effective_database_url)
    try:
        staff = StaffService(sessions=session_factory(engine), audit=AuditLog(engine))
        return {role: staff.create(actor=SYSTEM, username=f"{prefix}-{role.value}", role=role).token for role in Role}
    finally:
        engine.dispose()


def client(api: RunningApi, token: str) -> httpx.Client:
    return httpx.Client(base_url=api.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120)
