"""Retention and erasure: when an event's retention runs out, erase its evidence unless a legal hold says no.

    witness expire [--dry-run]                          # e.g. nightly from cron / a Kubernetes CronJob

An event is due `retention_days` after its window ends. For a due event without an active legal hold, the job
deletes every version of its manifests and of each original no live upload of another event still references
(originals are content-addressed and shared), with the GOVERNANCE bypass the evidence bucket's lock allows; any
object version under an S3 legal hold is kept and reported. It also deletes the extraction job's thumbnails and
crops of the event's photos, the witnesses' consented positions, closes the event to uploads and records the
erasure. Each erased or held event is one audit entry listing the SHA-256 of the originals erased.
The derived images are found through the catalog's records, so this runs before those records are erased:
`witness expire` then runs `governance.erasure.ErasureFollowUp`, which replaces the catalog runs holding the
erased events' (and withdrawn submissions') records, publishes index versions without them and deletes the
older index versions that still hold them, each step audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from beam_jobs.pipeline.catalog import read_committed
from infra.storage.config import BucketNames
from ingest_api.db.models import Event, Position, Submission, Upload, WitnessContact
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import active_hold
from ingest_api.governance.staff import as_utc
from ingest_api.governance.tables import EventErasure

_NO_HOLD_CODES = frozenset({"NoSuchObjectLegalHold", "NoSuchObjectLockConfiguration"})


class ErasureFailed(RuntimeError):
    """The object store refused some deletions; the event is not marked erased, so the next run retries it."""


@dataclass
class EventOutcome:
    event_id: str
    status: str  # "erased", "held" (legal hold), "due" (dry run)
    originals: list[str] = field(default_factory=list)
    manifests: int = 0
    derived: int = 0
    kept_under_object_hold: list[str] = field(default_factory=list)


def due_at(event: Event) -> datetime:
    return as_utc(event.ends_at) + timedelta(days=event.retention_days)


@dataclass(frozen=True)
class RetentionJob:
    client: Minio
    buckets: BucketNames
    sessions: sessionmaker[Session]
    audit: AuditLog

    def due_events(self, session: Session, now: datetime) -> list[Event]:
        erased = select(EventErasure.event_id)
        events = session.scalars(select(Event).where(Event.id.not_in(erased)).order_by(Event.ends_at, Event.id))
        return [event for event in events if due_at(event) <= now]

    def run(self, *, now: datetime | None = None, actor: str = "system", role: str = "admin",
            dry_run: bool = False, only: frozenset[str] | None = None) -> list[EventOutcome]:
        """Erase (or with `dry_run` list) every due event, or only those in `only`."""
        moment = now or datetime.now(UTC)
        outcomes = []
        with self.sessions() as session:
            for event in self.due_events(session, moment):
                if only is not None and event.id not in only:
                    continue
                if (hold := active_hold(session, event.id)) is not None:
                    outcome = EventOutcome(event.id, "held")
                    self.audit.append(AuditRecord(actor=actor, role=role, action="expire_held", parameters={
                        "event_id": event.id, "hold_reason": hold.reason, "due_at": due_at(event).isoformat()}))
                elif dry_run:
                    outcome = EventOutcome(event.id, "due")
                else:
                    outcome = self._erase(session, event, moment, actor, role)
                outcomes.append(outcome)
        return outcomes

    def _shared_elsewhere(self, session: Session, sha256: str, event_id: str) -> bool:
        erased = select(EventErasure.event_id)
        count = session.scalar(
            select(func.count(Upload.id)).join(Submission, Submission.id == Upload.submission_id).where(
                Upload.sha256 == sha256, Upload.withdrawn_at.is_(None), Submission.event_id != event_id,
                Submission.event_id.not_in(erased)))
        return bool(count)

    def _erase(self, session: Session, event: Event, now: datetime, actor: str, role: str) -> EventOutcome:
        outcome = EventOutcome(event.id, "erased")
        rows = session.execute(select(Upload).join(Submission, Submission.id == Upload.submission_id)
                               .where(Submission.event_id == event.id)).scalars().all()
        manifests = sorted({upload.manifest_key for upload in rows})
        originals = sorted({(upload.sha256, upload.object_key) for upload in rows
                            if not self._shared_elsewhere(session, upload.sha256, event.id)})
        evidence = self._versions(self.buckets.evidence, manifests + [key for _, key in originals])
        held = {target.name for target in evidence if self._object_held(target)}
        outcome.kept_under_object_hold = sorted(held)
        self._delete(self.buckets.evidence, [t for t in evidence if t.name not in held])
        outcome.manifests = len([key for key in manifests if key not in held])
        outcome.originals = [sha for sha, key in originals if key not in held]
        outcome.derived = self._delete_derived(event.id)
        submissions = select(Submission.id).where(Submission.event_id == event.id)
        for position in session.scalars(select(Position).where(Position.submission_id.in_(submissions))):
            session.delete(position)
        # and their contact details: nothing of a witness outlives the event's retention
        session.execute(delete(WitnessContact).where(WitnessContact.submission_id.in_(submissions)))
        for upload in rows:
            upload.withdrawn_at = upload.withdrawn_at or now
        event.accepts_uploads = False
        summary = {"originals": len(outcome.originals), "manifests": outcome.manifests, "derived": outcome.derived,
                   "kept_under_object_hold": outcome.kept_under_object_hold}
        session.add(EventErasure(event_id=event.id, erased_at=now, summary=json.dumps(summary, sort_keys=True)))
        session.commit()
        self.audit.append(AuditRecord(actor=actor, role=role, action="expire", result_ids=outcome.originals,
                                      parameters={"event_id": event.id, "retention_days": event.retention_days,
                                                  "due_at": due_at(event).isoformat(), **summary}))
        return outcome

    def _versions(self, bucket: str, keys: list[str]) -> list[DeleteObject]:
        found = []
        for key in keys:
            for item in self.client.list_objects(bucket, prefix=key, include_version=True):
                if item.object_name == key:
                    found.append(DeleteObject(key, item.version_id))
        return found

    def _object_held(self, target: DeleteObject) -> bool:
        try:
            return self.client.is_object_legal_hold_enabled(self.buckets.evidence, target.name, target.version_id)
        except S3Error as error:
            if error.code in _NO_HOLD_CODES:  # servers differ in how they say "never had a hold"
                return False
            raise

    def _delete(self, bucket: str, targets: list[DeleteObject]) -> None:
        if not targets:
            return
        errors = list(self.client.remove_objects(bucket, targets, bypass_governance_mode=True))
        if errors:
            raise ErasureFailed(f"{len(errors)} objects in {bucket} could not be deleted, first: {errors[0]}")

    def _delete_derived(self, event_id: str) -> int:
        photos = read_committed(self.client, self.buckets.catalog, "photos").to_pylist()
        photo_ids = {row["photo_id"] for row in photos if row["event_id"] == event_id}
        keys = {row["thumbnail_key"] for row in photos if row["photo_id"] in photo_ids}
        if photo_ids:
            detections = read_committed(self.client, self.buckets.catalog, "detections")
            keys |= {row["crop_key"] for row in detections.select(["photo_id", "crop_key"]).to_pylist()
                     if row["photo_id"] in photo_ids and row["crop_key"]}
        targets = self._versions(self.buckets.derived, sorted(keys))
        self._delete(self.buckets.derived, targets)
        return len({t.name for t in targets})
