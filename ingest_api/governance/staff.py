"""Staff accounts and their bearer tokens, as a service testable without HTTP.

    staff = StaffService(sessions=sessions, audit=AuditLog(engine), token_ttl=timedelta(hours=12))
    issued = staff.create(actor=SYSTEM, username="ines", role=Role.INVESTIGATOR, password="...")  # token shown once
    principal = staff.authenticate(token)                       # -> policy.Principal with assigned case ids

Tokens are opaque (policy.new_token), stored as SHA-256 and looked up by digest: a 256-bit random secret needs no
slow hash. Passwords, low-entropy human secrets, are argon2id (argon2-cffi); a login trades one for a token with a
short life, so argon2's cost is paid once per session, not per request. Every login (failed ones too), token issue,
revocation and role change is appended to the audit log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Principal, Role, new_token, token_digest
from ingest_api.governance.tables import CaseAssignment, StaffToken, StaffUser

_HASHER = PasswordHasher()
MIN_PASSWORD_LENGTH = 12


class NotAuthenticated(Exception):
    """No token, an unknown, expired or revoked token, or a disabled account (HTTP 401)."""


class GovernanceNotFound(LookupError):
    """A staff member, case or event named in a request does not exist (HTTP 404)."""


class GovernanceConflict(ValueError):
    """The request contradicts the current state or the rules (duplicate name, weak password...) (HTTP 409/422)."""


def as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; we only ever store UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: The principal recorded for operator commands run on the server itself (`witness staff create`, `witness expire`).
SYSTEM = Principal("system", Role.ADMIN)


@dataclass(frozen=True)
class IssuedToken:
    username: str
    role: Role
    token: str  # shown once
    expires_at: datetime


@dataclass(frozen=True)
class StaffView:
    username: str
    role: Role
    has_password: bool
    disabled: bool
    created_at: datetime


def _record(actor: Principal, action: str, **parameters: object) -> AuditRecord:
    return AuditRecord(actor=actor.user_id, role=actor.role.value, action=action, parameters=parameters)


@dataclass(frozen=True)
class StaffService:
    sessions: sessionmaker[Session]
    audit: AuditLog
    token_ttl: timedelta = timedelta(hours=12)
    issued_token_ttl: timedelta = timedelta(days=30)

    def _user(self, session: Session, username: str) -> StaffUser:
        user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
        if user is None:
            raise GovernanceNotFound(f"no staff member {username!r}")
        return user

    def _issue(self, session: Session, user: StaffUser, purpose: str, ttl: timedelta) -> IssuedToken:
        token, digest = new_token()
        now = datetime.now(UTC)
        session.add(StaffToken(user_id=user.id, token_sha256=digest, purpose=purpose, issued_at=now,
                               expires_at=now + ttl))
        session.commit()
        return IssuedToken(user.username, Role(user.role), token, now + ttl)

    def create(self, *, actor: Principal, username: str, role: Role, password: str | None = None) -> IssuedToken:
        """Create an account and issue its first token (a long-lived one, for the CLI or a service)."""
        if not username.strip() or len(username) > 100:
            raise GovernanceConflict(f"username must be 1-100 characters, got {username!r}")
        if password is not None and len(password) < MIN_PASSWORD_LENGTH:
            raise GovernanceConflict(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
        with self.sessions() as session:
            if session.scalars(select(StaffUser).where(StaffUser.username == username)).first() is not None:
                raise GovernanceConflict(f"staff member {username!r} already exists")
            user = StaffUser(id=str(uuid.uuid4()), username=username, role=role.value,
                             password_hash=_HASHER.hash(password) if password else None, created_at=datetime.now(UTC))
            session.add(user)
            session.flush()  # the token row references it
            issued = self._issue(session, user, "issued", self.issued_token_ttl)
        self.audit.append(_record(actor, "staff_create", username=username, new_role=role.value,
                                  password=password is not None))
        return issued

    def login(self, *, username: str, password: str) -> IssuedToken:
        """Password login; the same error whether the user is unknown, disabled or the password wrong."""
        with self.sessions() as session:
            user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
            ok = False
            if user is not None and user.password_hash and user.disabled_at is None:
                try:
                    ok = _HASHER.verify(user.password_hash, password)
                except (VerificationError, InvalidHashError):
                    ok = False
            if user is None or not ok:
                self.audit.append(AuditRecord(actor=username[:200] or "?", role="anonymous", action="login_failed"))
                raise NotAuthenticated("unknown user or wrong password")
            if _HASHER.check_needs_rehash(str(user.password_hash)):
                user.password_hash = _HASHER.hash(password)
            issued = self._issue(session, user, "login", self.token_ttl)
        self.audit.append(AuditRecord(actor=username, role=issued.role.value, action="login"))
        return issued

    def issue_token(self, *, actor: Principal, username: str) -> IssuedToken:
        with self.sessions() as session:
            issued = self._issue(session, self._user(session, username), "issued", self.issued_token_ttl)
        self.audit.append(_record(actor, "token_issue", username=username))
        return issued

    def authenticate(self, token: str) -> Principal:
        """The principal holding `token`, with the ids of the cases assigned to it."""
        now = datetime.now(UTC)
        with self.sessions() as session:
            row = session.execute(
                select(StaffToken, StaffUser)
                .join(StaffUser, StaffUser.id == StaffToken.user_id)
                .where(StaffToken.token_sha256 == token_digest(token))
            ).one_or_none()
            if row is None:
                raise NotAuthenticated("unknown token")
            stored, user = row
            if stored.revoked_at is not None or as_utc(stored.expires_at) <= now or user.disabled_at is not None:
                raise NotAuthenticated("token expired or revoked; log in again")
            cases = session.scalars(select(CaseAssignment.case_id).where(CaseAssignment.user_id == user.id))
            return Principal(user.username, Role(user.role), frozenset(cases))

    def revoke(self, *, token: str, actor: Principal) -> None:
        """Log out: revoke the token the request came with."""
        with self.sessions() as session:
            session.execute(update(StaffToken).where(StaffToken.token_sha256 == token_digest(token))
                            .values(revoked_at=datetime.now(UTC)))
            session.commit()
        self.audit.append(_record(actor, "logout"))

    def revoke_all(self, *, actor: Principal, username: str) -> int:
        with self.sessions() as session:
            user = self._user(session, username)
            result = session.execute(update(StaffToken).where(StaffToken.user_id == user.id,
                                                              StaffToken.revoked_at.is_(None))
                                     .values(revoked_at=datetime.now(UTC)))
            session.commit()
            count = int(getattr(result, "rowcount", 0) or 0)
        self.audit.append(_record(actor, "tokens_revoke", username=username, revoked=count))
        return count

    def set_role(self, *, actor: Principal, username: str, role: Role) -> None:
        if actor.user_id == username:
            raise GovernanceConflict("nobody changes their own role (four eyes)")
        with self.sessions() as session:
            user = self._user(session, username)
            old, user.role = user.role, role.value
            session.commit()
        self.audit.append(_record(actor, "role_change", username=username, old_role=old, new_role=role.value))

    def all_staff(self) -> list[StaffView]:
        with self.sessions() as session:
            users = session.scalars(select(StaffUser).order_by(StaffUser.username))
            return [StaffView(u.username, Role(u.role), u.password_hash is not None, u.disabled_at is not None,
                              as_utc(u.created_at)) for u in users]
