"""The demo's staff accounts: a supervisor who opens the case and an investigator who searches it.

Their password is fixed and printed in the README and at the end of the demo, so that anyone can sign in to the
console after `witness demo`; that is acceptable on a laptop and nowhere else, so the demo refuses to run outside
local mode (`WITNESS_MODE=production`). Accounts are created once, on the server side like `witness staff create`
(an operator action, audited as `system`), and found again on later runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Role
from ingest_api.governance.staff import SYSTEM, StaffService
from ingest_api.settings import ApiSettings

DEMO_PASSWORD = "witness-demo-local-only"


class DemoRefused(Exception):
    """The demo would create accounts with a published password where that is not acceptable."""


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    password: str = DEMO_PASSWORD


SUPERVISOR = DemoAccount("demo-supervisor", Role.SUPERVISOR)
INVESTIGATOR = DemoAccount("demo-investigator", Role.INVESTIGATOR)


def require_local(settings: ApiSettings) -> None:
    if settings.mode != "local":
        raise DemoRefused(
            f"`witness demo` creates accounts with a published password; it runs in local mode only "
            f"(WITNESS_MODE is {settings.mode!r})"
        )


def ensure_accounts(settings: ApiSettings, accounts: tuple[DemoAccount, ...] = (SUPERVISOR, INVESTIGATOR)
                    ) -> list[str]:
    """Create the accounts that do not exist yet; returns the usernames created now."""
    require_local(settings)
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    try:
        staff = StaffService(sessions=session_factory(engine), audit=AuditLog(engine))
        existing = {view.username for view in staff.all_staff()}
        created = []
        for account in accounts:
            if account.username not in existing:
                staff.create(actor=SYSTEM, username=account.username, role=account.role, password=account.password)
                created.append(account.username)
        return created
    finally:
        engine.dispose()
