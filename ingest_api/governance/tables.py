"""Governance tables on the metadata store's `Base`: staff, their tokens, cases, assignments, event links,
legal holds and erasures (migration 0003, with the audit table, which keeps its own `MetaData`), fence approvals
(0005) and case subjects (0006)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ingest_api.db.models import Base


class StaffUser(Base):
    """A member of staff. `password_hash` is argon2 (None: token-only account, e.g. a service)."""

    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StaffToken(Base):
    """An opaque bearer token, kept only as its SHA-256 (the holder saw it once)."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "login" (password) or "issued" (admin / CLI)
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)  # the force's case number
    title: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseAssignment(Base):
    __tablename__ = "case_assignments"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("staff_users.id"), primary_key=True, index=True)
    assigned_by: Mapped[str] = mapped_column(String(100))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CaseEvent(Base):
    __tablename__ = "case_events"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True, index=True)
    linked_by: Mapped[str] = mapped_column(String(100))
    linked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LegalHold(Base):
    """A hold on an event's evidence: while one is not cleared, neither expiry nor withdrawal deletes it."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class FenceApprovalGrant(Base):
    """A supervisor's approval of fences larger than the limits, for one case, until it expires."""

    __tablename__ = "fence_approvals"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    approved_by: Mapped[str] = mapped_column(String(100))
    approver_role: Mapped[str] = mapped_column(String(20))
    max_radius_m: Mapped[float] = mapped_column(Float)
    max_window_s: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(500))
    approved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventErasure(Base):
    """An event whose retention ran out and whose evidence was erased (summary: JSON counts)."""

    __tablename__ = "event_erasures"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str] = mapped_column(Text)


class CaseSubject(Base):
    """A detection an investigator named as the case's subject: its court bundle leaves it unblurred.

    `kind`, `photo_id` and `photo_sha256` are copied from the catalog when marked, so the list stays readable
    (and the bundle knows which photo to spare) without reading the catalog again.
    """

    __tablename__ = "case_subjects"

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    detection_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # face, vehicle or plate
    photo_id: Mapped[str] = mapped_column(String(200))
    photo_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    marked_by: Mapped[str] = mapped_column(String(100))
    marked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
