"""Cases, their investigators and events, staff-side event creation and legal holds (no HTTP here).

    cases = CaseService(sessions=sessions, audit=audit_log)
    case = cases.create(actor=supervisor, reference="2026/0412", title="Pont Neuf assault")
    cases.assign(actor=supervisor, case_id=case.id, username="ines")
    event = cases.create_event(actor=ines, case_id=case.id, name=..., lat=..., ...)   # linked to the case

Every change is audited. Case-scoped reads check `policy.require_case` first, so an investigator learns nothing about
a case not assigned to them (403 whether it exists or not); supervisors see every case.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest_api.db import repository
from ingest_api.db.models import Event
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Action, Principal, Role, require, require_case
from ingest_api.governance.staff import GovernanceConflict, GovernanceNotFound, as_utc
from ingest_api.governance.tables import Case, CaseAssignment, CaseEvent, LegalHold, StaffUser


@dataclass(frozen=True)
class CaseView:
    id: str
    reference: str
    title: str
    created_by: str
    created_at: datetime
    investigators: tuple[str, ...]
    event_ids: tuple[str, ...]


@dataclass(frozen=True)
class EventView:
    id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime
    retention_days: int
    accepts_uploads: bool
    case_ids: tuple[str, ...]
    legal_hold: bool


def _audit(actor: Principal, action: str, case_id: str | None = None, **parameters: Any) -> AuditRecord:
    return AuditRecord(actor=actor.user_id, role=actor.role.value, action=action, case_id=case_id,
                       parameters=parameters)


def active_hold(session: Session, event_id: str) -> LegalHold | None:
    return session.scalars(
        select(LegalHold).where(LegalHold.event_id == event_id, LegalHold.cleared_at.is_(None))
    ).first()


def case_event_ids(session: Session, case_id: str) -> list[str]:
    return list(session.scalars(select(CaseEvent.event_id).where(CaseEvent.case_id == case_id)
                                .order_by(CaseEvent.linked_at, CaseEvent.event_id)))


@dataclass(frozen=True)
class CaseService:
    sessions: sessionmaker[Session]
    audit: AuditLog

    def _case(self, session: Session, case_id: str) -> Case:
        case = session.get(Case, case_id)
        if case is None:
            raise GovernanceNotFound(f"no case {case_id!r}")
        return case

    def searchable_event_ids(self, case_id: str) -> frozenset[str]:
        """The events a search made for `case_id` may look into: only those linked to the case."""
        with self.sessions() as session:
            return frozenset(case_event_ids(session, case_id))

    def _event(self, session: Session, event_id: str) -> Event:
        event = repository.get_event(session=session, event_id=event_id)
        if event is None:
            raise GovernanceNotFound(f"no event {event_id!r}")
        return event

    def _view(self, session: Session, case: Case) -> CaseView:
        names = session.scalars(select(StaffUser.username).join(CaseAssignment, CaseAssignment.user_id == StaffUser.id)
                                .where(CaseAssignment.case_id == case.id).order_by(StaffUser.username))
        return CaseView(case.id, case.reference, case.title, case.created_by, as_utc(case.created_at), tuple(names),
                        tuple(case_event_ids(session, case.id)))

    def _event_view(self, session: Session, event: Event) -> EventView:
        cases = session.scalars(select(CaseEvent.case_id).where(CaseEvent.event_id == event.id))
        return EventView(event.id, event.name, event.lat, event.lon, event.radius_m, as_utc(event.starts_at),
                         as_utc(event.ends_at), event.retention_days, event.accepts_uploads, tuple(sorted(cases)),
                         active_hold(session, event.id) is not None)

    def create(self, *, actor: Principal, reference: str, title: str) -> CaseView:
        require(actor, Action.CREATE_CASE)
        with self.sessions() as session:
            if session.scalars(select(Case).where(Case.reference == reference)).first() is not None:
                raise GovernanceConflict(f"a case with reference {reference!r} already exists")
            case = Case(id=str(uuid.uuid4()), reference=reference, title=title, created_by=actor.user_id,
                        created_at=datetime.now(UTC))
            session.add(case)
            session.commit()
            view = self._view(session, case)
        self.audit.append(_audit(actor, "case_create", view.id, reference=reference, title=title))
        return view

    def get(self, *, actor: Principal, case_id: str) -> CaseView:
        require_case(actor, Action.VIEW_CASE, case_id)
        with self.sessions() as session:
            view = self._view(session, self._case(session, case_id))
        self.audit.append(_audit(actor, "case_view", case_id))
        return view

    def visible(self, *, actor: Principal) -> list[CaseView]:
        """Supervisors: every case; investigators: the cases assigned to them."""
        require(actor, Action.VIEW_CASE)
        with self.sessions() as session:
            query = select(Case).order_by(Case.created_at, Case.id)
            if actor.role is not Role.SUPERVISOR:
                query = query.where(Case.id.in_(actor.assigned_cases))
            return [self._view(session, case) for case in session.scalars(query)]

    def assign(self, *, actor: Principal, case_id: str, username: str) -> CaseView:
        require(actor, Action.ASSIGN_CASE)
        with self.sessions() as session:
            case = self._case(session, case_id)
            user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
            if user is None:
                raise GovernanceNotFound(f"no staff member {username!r}")
            if user.role != Role.INVESTIGATOR.value:
                raise GovernanceConflict(f"only investigators are assigned to cases; {username!r} is {user.role}")
            if session.get(CaseAssignment, (case_id, user.id)) is None:
                session.add(CaseAssignment(case_id=case_id, user_id=user.id, assigned_by=actor.user_id,
                                           assigned_at=datetime.now(UTC)))
                session.commit()
            view = self._view(session, case)
        self.audit.append(_audit(actor, "case_assign", case_id, username=username))
        return view

    def unassign(self, *, actor: Principal, case_id: str, username: str) -> CaseView:
        require(actor, Action.ASSIGN_CASE)
        with self.sessions() as session:
            case = self._case(session, case_id)
            user = session.scalars(select(StaffUser).where(StaffUser.username == username)).one_or_none()
            assignment = session.get(CaseAssignment, (case_id, user.id)) if user else None
            if assignment is None:
                raise GovernanceNotFound(f"{username!r} is not assigned to case {case_id!r}")
            session.delete(assignment)
            session.commit()
            view = self._view(session, case)
        self.audit.append(_audit(actor, "case_unassign", case_id, username=username))
        return view

    def link_event(self, *, actor: Principal, case_id: str, event_id: str) -> CaseView:
        require(actor, Action.ASSIGN_CASE)
        with self.sessions() as session:
            case = self._case(session, case_id)
            self._event(session, event_id)
            if session.get(CaseEvent, (case_id, event_id)) is None:
                session.add(CaseEvent(case_id=case_id, event_id=event_id, linked_by=actor.user_id,
                                      linked_at=datetime.now(UTC)))
                session.commit()
            view = self._view(session, case)
        self.audit.append(_audit(actor, "case_link_event", case_id, event_id=event_id))
        return view

    def create_event(self, *, actor: Principal, case_id: str, name: str, lat: float, lon: float, radius_m: float,
                     starts_at: datetime, ends_at: datetime, retention_days: int) -> EventView:
        """Open an appeal for witnesses, linked to a case the actor may work on (raises ValueError if malformed)."""
        require_case(actor, Action.CREATE_EVENT, case_id)
        with self.sessions() as session:
            self._case(session, case_id)
            event = repository.create_event(session=session, name=name, lat=lat, lon=lon, radius_m=radius_m,
                                            starts_at=starts_at, ends_at=ends_at, retention_days=retention_days)
            session.add(CaseEvent(case_id=case_id, event_id=event.id, linked_by=actor.user_id,
                                  linked_at=datetime.now(UTC)))
            session.commit()
            view = self._event_view(session, event)
        self.audit.append(_audit(actor, "event_create", case_id, event_id=view.id, name=name, lat=lat, lon=lon,
                                 radius_m=radius_m, starts_at=starts_at.isoformat(), ends_at=ends_at.isoformat(),
                                 retention_days=retention_days))
        return view

    def visible_events(self, *, actor: Principal) -> list[EventView]:
        """Events linked to the cases the actor may see (supervisors: every event, linked or not)."""
        require(actor, Action.VIEW_CASE)
        with self.sessions() as session:
            query = select(Event).order_by(Event.created_at, Event.id)
            if actor.role is not Role.SUPERVISOR:
                linked = select(CaseEvent.event_id).where(CaseEvent.case_id.in_(actor.assigned_cases))
                query = query.where(Event.id.in_(linked))
            return [self._event_view(session, event) for event in session.scalars(query)]

    def set_retention(self, *, actor: Principal, event_id: str, retention_days: int) -> EventView:
        require(actor, Action.SET_RETENTION)
        if retention_days < 0:
            raise GovernanceConflict(f"retention_days must be >= 0, got {retention_days}")
        with self.sessions() as session:
            event = self._event(session, event_id)
            old, event.retention_days = event.retention_days, retention_days
            session.commit()
            view = self._event_view(session, event)
        self.audit.append(_audit(actor, "event_retention", None, event_id=event_id, old_days=old,
                                 new_days=retention_days))
        return view

    def place_hold(self, *, actor: Principal, event_id: str, reason: str) -> EventView:
        require(actor, Action.PLACE_LEGAL_HOLD)
        if not reason.strip():
            raise GovernanceConflict("a legal hold needs a reason (the order or proceedings it serves)")
        with self.sessions() as session:
            event = self._event(session, event_id)
            if active_hold(session, event_id) is None:
                session.add(LegalHold(event_id=event_id, reason=reason, placed_by=actor.user_id,
                                      placed_at=datetime.now(UTC)))
                session.commit()
            view = self._event_view(session, event)
        self.audit.append(_audit(actor, "legal_hold_place", None, event_id=event_id, reason=reason))
        return view

    def clear_hold(self, *, actor: Principal, event_id: str) -> EventView:
        require(actor, Action.PLACE_LEGAL_HOLD)
        with self.sessions() as session:
            event = self._event(session, event_id)
            hold = active_hold(session, event_id)
            if hold is None:
                raise GovernanceNotFound(f"event {event_id!r} is not under a legal hold")
            hold.cleared_by, hold.cleared_at = actor.user_id, datetime.now(UTC)
            session.commit()
            view = self._event_view(session, event)
        self.audit.append(_audit(actor, "legal_hold_clear", None, event_id=event_id))
        return view
