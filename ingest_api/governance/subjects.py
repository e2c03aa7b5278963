"""Case subjects: the detections (a face, a vehicle, a plate) an investigator names as whom or what the case is about.

    subjects = CaseSubjects(sessions=sessions, audit=audit, client=s3, catalog_bucket="catalog")
    subjects.mark(actor=ines, case_id=case.id, detection_id=hit.detection_id, note="the suspect's car")
    subjects.listed(actor=ines, case_id=case.id); subjects.unmark(actor=ines, case_id=case.id, detection_id=...)

The court bundle blurs every face and plate except the case's subjects (and a plate inside a subject vehicle),
so marking is what un-blurs someone: it is limited to people working on the case (`Action.MARK_SUBJECT`,
case-scoped), accepted only for a detection of a photo in one of the case's events, and audited with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.compute as pc
from minio import Minio
from minio.error import S3Error
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from urllib3.exceptions import HTTPError

from beam_jobs.pipeline.catalog import read_committed
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import case_event_ids
from ingest_api.governance.policy import Action, Principal, require_case
from ingest_api.governance.staff import GovernanceConflict, GovernanceNotFound, as_utc
from ingest_api.governance.tables import Case, CaseSubject
from ingest_api.services.ingest import StorageUnavailable

SUBJECT_KINDS = frozenset({"face", "vehicle", "plate"})


@dataclass(frozen=True)
class SubjectView:
    case_id: str
    detection_id: str
    kind: str
    photo_id: str
    photo_sha256: str
    note: str | None
    marked_by: str
    marked_at: datetime


@dataclass(frozen=True)
class CatalogDetection:
    detection_id: str
    kind: str
    photo_id: str
    photo_sha256: str
    event_id: str


def find_detection(client: Minio, catalog_bucket: str, detection_id: str) -> CatalogDetection | None:
    """The committed detection `detection_id` with its photo's sha256 and event, or None if the catalog lacks it."""
    try:
        return _find_detection(client, catalog_bucket, detection_id)
    except (S3Error, HTTPError) as error:  # answered as 503 "retry", not as a server fault
        raise StorageUnavailable(f"the catalog could not be read: {error}") from error


def _find_detection(client: Minio, catalog_bucket: str, detection_id: str) -> CatalogDetection | None:
    detections = read_committed(client, catalog_bucket, "detections").select(["detection_id", "photo_id", "kind"])
    found = detections.filter(pc.equal(detections.column("detection_id"), detection_id)).to_pylist()
    if not found:
        return None
    photos = read_committed(client, catalog_bucket, "photos").select(["photo_id", "sha256", "event_id"])
    photo = photos.filter(pc.equal(photos.column("photo_id"), found[0]["photo_id"])).to_pylist()
    if not photo:
        return None
    return CatalogDetection(detection_id, str(found[0]["kind"]), str(photo[0]["photo_id"]), str(photo[0]["sha256"]),
                            str(photo[0]["event_id"]))


def _view(row: CaseSubject) -> SubjectView:
    return SubjectView(row.case_id, row.detection_id, row.kind, row.photo_id, row.photo_sha256, row.note,
                       row.marked_by, as_utc(row.marked_at))


def subjects_of(session: Session, case_id: str) -> list[SubjectView]:
    rows = session.scalars(select(CaseSubject).where(CaseSubject.case_id == case_id)
                           .order_by(CaseSubject.marked_at, CaseSubject.detection_id))
    return [_view(row) for row in rows]


@dataclass(frozen=True)
class CaseSubjects:
    sessions: sessionmaker[Session]
    audit: AuditLog
    client: Minio
    catalog_bucket: str

    def _case(self, session: Session, case_id: str) -> Case:
        case = session.get(Case, case_id)
        if case is None:
            raise GovernanceNotFound(f"no case {case_id!r}")
        return case

    def _record(self, actor: Principal, action: str, case_id: str, detection_id: str | None = None,
                **parameters: object) -> None:
        self.audit.append(AuditRecord(actor=actor.user_id, role=actor.role.value, action=action, case_id=case_id,
                                      parameters=parameters, result_ids=[detection_id] if detection_id else []))

    def listed(self, *, actor: Principal, case_id: str) -> list[SubjectView]:
        require_case(actor, Action.VIEW_CASE, case_id)
        with self.sessions() as session:
            self._case(session, case_id)
            views = subjects_of(session, case_id)
        self._record(actor, "case_subjects_view", case_id)
        return views

    def mark(self, *, actor: Principal, case_id: str, detection_id: str, note: str | None = None) -> SubjectView:
        """Name a detection of one of the case's photos as its subject (idempotent; a new note replaces the old)."""
        require_case(actor, Action.MARK_SUBJECT, case_id)
        with self.sessions() as session:
            self._case(session, case_id)
            found = find_detection(self.client, self.catalog_bucket, detection_id)
            if found is None or found.event_id not in case_event_ids(session, case_id):
                raise GovernanceNotFound(f"no detection {detection_id!r} in the photos of case {case_id!r}")
            if found.kind not in SUBJECT_KINDS:
                raise GovernanceConflict(f"detection {detection_id!r} is a {found.kind}; a subject is one of "
                                         f"{', '.join(sorted(SUBJECT_KINDS))} (mark the person's face)")
            row = session.get(CaseSubject, (case_id, detection_id))
            if row is None:
                row = CaseSubject(case_id=case_id, detection_id=detection_id, kind=found.kind,
                                  photo_id=found.photo_id, photo_sha256=found.photo_sha256,
                                  marked_by=actor.user_id, marked_at=datetime.now(UTC))
                session.add(row)
            row.note = note
            session.commit()
            view = _view(row)
        self._record(actor, "case_subject_mark", case_id, detection_id, kind=view.kind, photo_id=view.photo_id,
                     note=note)
        return view

    def unmark(self, *, actor: Principal, case_id: str, detection_id: str) -> list[SubjectView]:
        """Stop treating a detection as the case's subject: the next bundle blurs it again."""
        require_case(actor, Action.MARK_SUBJECT, case_id)
        with self.sessions() as session:
            self._case(session, case_id)
            row = session.get(CaseSubject, (case_id, detection_id))
            if row is None:
                raise GovernanceNotFound(f"detection {detection_id!r} is not a subject of case {case_id!r}")
            session.delete(row)
            session.commit()
            views = subjects_of(session, case_id)
        self._record(actor, "case_subject_unmark", case_id, detection_id)
        return views
