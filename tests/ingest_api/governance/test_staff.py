"""Staff accounts on a migrated SQLite store: hashed tokens, argon2 logins, expiry, revocation, audited changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DatabaseError

from ingest_api.governance.audit import verify_chain
from ingest_api.governance.auth import Governance
from ingest_api.governance.policy import Role, token_digest
from ingest_api.governance.staff import SYSTEM, GovernanceConflict, NotAuthenticated, StaffService
from ingest_api.governance.tables import StaffToken, StaffUser

PASSWORD = "correct horse battery"


def test_token_is_stored_only_as_its_digest(governance: Governance) -> None:
    issued = governance.staff.create(actor=SYSTEM, username="ines", role=Role.INVESTIGATOR)
    assert issued.token.startswith("wst_")
    with governance.staff.sessions() as session:
        stored = session.scalars(select(StaffToken.token_sha256)).all()
    assert stored == [token_digest(issued.token)]
    principal = governance.staff.authenticate(issued.token)
    assert (principal.user_id, principal.role, principal.assigned_cases) == ("ines", Role.INVESTIGATOR, frozenset())


def test_password_login_uses_argon2_and_is_audited(governance: Governance) -> None:
    governance.staff.create(actor=SYSTEM, username="sam", role=Role.SUPERVISOR, password=PASSWORD)
    with governance.staff.sessions() as session:
        assert (session.scalars(select(StaffUser.password_hash)).one() or "").startswith("$argon2id$")
    with pytest.raises(NotAuthenticated):
        governance.staff.login(username="sam", password="wrong password!")
    with pytest.raises(NotAuthenticated):
        governance.staff.login(username="nobody", password=PASSWORD)
    issued = governance.staff.login(username="sam", password=PASSWORD)
    assert governance.staff.authenticate(issued.token).role is Role.SUPERVISOR
    actions = [(e.actor, e.action) for e in governance.audit.entries()]
    assert actions == [("system", "staff_create"), ("sam", "login_failed"), ("nobody", "login_failed"),
                       ("sam", "login")]
    assert verify_chain(governance.audit.entries()).ok


def test_short_passwords_and_duplicates_are_refused(governance: Governance) -> None:
    with pytest.raises(GovernanceConflict, match="12 characters"):
        governance.staff.create(actor=SYSTEM, username="a", role=Role.ADMIN, password="short")
    governance.staff.create(actor=SYSTEM, username="a", role=Role.ADMIN)
    with pytest.raises(GovernanceConflict, match="already exists"):
        governance.staff.create(actor=SYSTEM, username="a", role=Role.AUDITOR)


def test_expired_and_revoked_tokens_are_refused(governance: Governance, migrated: Engine) -> None:
    short = StaffService(sessions=governance.staff.sessions, audit=governance.audit,
                         issued_token_ttl=timedelta(seconds=-1))
    expired = short.create(actor=SYSTEM, username="old", role=Role.AUDITOR)
    with pytest.raises(NotAuthenticated, match="expired"):
        governance.staff.authenticate(expired.token)
    live = governance.staff.issue_token(actor=SYSTEM, username="old")
    assert governance.staff.authenticate(live.token).user_id == "old"
    assert governance.staff.revoke_all(actor=SYSTEM, username="old") == 2
    with pytest.raises(NotAuthenticated):
        governance.staff.authenticate(live.token)
    with pytest.raises(NotAuthenticated, match="unknown"):
        governance.staff.authenticate("wst_made-up")


def test_role_changes_are_audited_and_never_self_service(governance: Governance) -> None:
    admin = governance.staff.create(actor=SYSTEM, username="root", role=Role.ADMIN)
    governance.staff.create(actor=SYSTEM, username="ines", role=Role.INVESTIGATOR)
    actor = governance.staff.authenticate(admin.token)
    with pytest.raises(GovernanceConflict, match="own role"):
        governance.staff.set_role(actor=actor, username="root", role=Role.AUDITOR)
    governance.staff.set_role(actor=actor, username="ines", role=Role.SUPERVISOR)
    last = governance.audit.entries()[-1]
    assert (last.actor, last.action) == ("root", "role_change")
    assert '"new_role":"supervisor"' in last.parameters and '"old_role":"investigator"' in last.parameters


def test_migration_makes_the_audit_table_append_only(governance: Governance, migrated: Engine) -> None:
    governance.staff.create(actor=SYSTEM, username="x", role=Role.ADMIN)
    for statement in ("UPDATE audit_entries SET actor = 'y'", "DELETE FROM audit_entries"):
        with pytest.raises(DatabaseError, match="append-only"), migrated.begin() as connection:
            connection.execute(text(statement))
    assert len(governance.audit.entries()) == 1
