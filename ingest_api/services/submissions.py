"""A witness's submission: opening it, its signed receipt, and withdrawing it.

Withdrawal deletes every version of the submission's manifests, and of each original no other live submission
references (originals are content-addressed and shared). The evidence bucket is under object lock, so deletion
uses the GOVERNANCE bypass; anything under legal hold stops the withdrawal before a single object is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker
from urllib3.exceptions import HTTPError

from infra.storage.config import BucketNames
from ingest_api.db import repository
from ingest_api.db.models import Submission, WitnessContact
from ingest_api.governance.cases import active_hold
from ingest_api.services import receipts
from ingest_api.services.ingest import StorageUnavailable
from ingest_api.services.sniff import RejectedUpload

_NO_HOLD_CODES = frozenset({"NoSuchObjectLegalHold", "NoSuchObjectLockConfiguration"})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite gives back naive UTC


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else _aware(moment).isoformat()


@dataclass(frozen=True)
class OpenedSubmission:
    submission_id: str
    event_id: str
    submission_token: str


@dataclass(frozen=True)
class SubmissionService:
    client: Minio
    buckets: BucketNames
    sessions: sessionmaker[Session]
    receipt_key: bytes
    receipt_key_id: str

    def open(self, *, event_id: str) -> OpenedSubmission:
        with self.sessions() as session:
            event = repository.get_event(session=session, event_id=event_id)
            if event is None:
                raise RejectedUpload("unknown_event", f"no event with id {event_id!r}", 404)
            if not event.accepts_uploads:
                raise RejectedUpload("event_closed", f"event {event_id!r} no longer accepts uploads", 410)
            created = repository.create_submission(session=session, event_id=event_id)
            return OpenedSubmission(created.submission.id, event_id, created.token)

    def _submission(self, session: Session, token: str) -> Submission:
        submission = repository.submission_for_token(session=session, token=token)
        if submission is None:
            raise RejectedUpload("unknown_receipt", "no submission has this receipt token", 404)
        return submission

    def receipt(self, *, token: str) -> dict[str, Any]:
        with self.sessions() as session:
            submission = self._submission(session, token)
            return self._signed_receipt(session, submission)

    def receipt_of(self, submission_id: str) -> dict[str, Any]:
        """The receipt of a submission named by id (staff side: the court bundle), the one its witness gets."""
        with self.sessions() as session:
            submission = session.get(Submission, submission_id)
            if submission is None:
                raise RejectedUpload("unknown_submission", f"no submission {submission_id!r}", 404)
            return self._signed_receipt(session, submission)

    def _signed_receipt(self, session: Session, submission: Submission) -> dict[str, Any]:
        """A pure function of what is recorded: asked twice without a change in between, the same bytes come back,
        so the court bundle can carry exactly the receipt the witness holds (`as_of`: the latest recorded change)."""
        event = repository.get_event(session=session, event_id=submission.event_id)
        uploads = repository.uploads_of_submission(session=session, submission_id=submission.id)
        positions = repository.positions_of_submission(session=session, submission_id=submission.id)
        changes = [submission.created_at, submission.withdrawn_at, *(u.received_at for u in uploads),
                   *(u.withdrawn_at for u in uploads), *(p.consented_at for p in positions)]
        files = [
            {
                "sha256": upload.sha256,
                "size": upload.size,
                "media_type": upload.media_type,
                "received_at": _utc(upload.received_at),
                "caption": upload.caption,
                "filename": upload.client_filename,
                "status": "withdrawn" if upload.withdrawn_at else "stored",
            }
            for upload in uploads
        ]
        document = {
            "receipt_version": 2,
            "event_id": submission.event_id,
            "event_name": event.name if event else None,
            "submission_id": submission.id,
            "opened_at": _utc(submission.created_at),
            "withdrawn_at": _utc(submission.withdrawn_at),
            "as_of": _utc(max(_aware(moment) for moment in changes if moment is not None)),
            "files": files,
            "positions": [
                {
                    "source": position.source,
                    "lat": position.lat,
                    "lon": position.lon,
                    "accuracy_m": position.accuracy_m,
                    "captured_at": _utc(position.captured_at),
                }
                for position in positions
            ],
        }
        return receipts.sign(document, key=self.receipt_key, key_id=self.receipt_key_id)

    def withdraw(self, *, token: str) -> dict[str, Any]:
        """Delete the submission's evidence; idempotent, so a withdrawal cut short by an outage can be repeated."""
        with self.sessions() as session:
            submission = self._submission(session, token)
            uploads = repository.uploads_of_submission(session=session, submission_id=submission.id)
            keys = [upload.manifest_key for upload in uploads]
            keys += [
                upload.object_key
                for upload in uploads
                if repository.other_live_references(session=session, sha256=upload.sha256, submission_id=submission.id)
                == 0
            ]
            if active_hold(session, submission.event_id) is not None:
                raise RejectedUpload(
                    "legal_hold",
                    "the incident this submission belongs to is under a legal hold placed by investigators; it "
                    "cannot be withdrawn now and nothing was deleted",
                    409,
                )
            try:
                versions = self._versions(sorted(set(keys)))
                self._refuse_under_legal_hold(versions)
                now = datetime.now(UTC)
                submission.withdrawn_at = submission.withdrawn_at or now
                for upload in uploads:
                    upload.withdrawn_at = upload.withdrawn_at or now
                for position in repository.positions_of_submission(session=session, submission_id=submission.id):
                    session.delete(position)  # a withdrawn witness's whereabouts are not kept either
                session.execute(delete(WitnessContact).where(WitnessContact.submission_id == submission.id))
                session.commit()
                self._delete(versions)
            except (S3Error, HTTPError, OSError) as error:
                message = f"the evidence store is unavailable, withdrawal not finished (retry it): {error}"
                raise StorageUnavailable(message) from error
            return self._signed_receipt(session, submission)

    def _versions(self, keys: list[str]) -> list[DeleteObject]:
        found = []
        for key in keys:
            for item in self.client.list_objects(self.buckets.evidence, prefix=key, include_version=True):
                if item.object_name == key:
                    found.append(DeleteObject(key, item.version_id))
        return found

    def _on_legal_hold(self, target: DeleteObject) -> bool:
        try:
            return self.client.is_object_legal_hold_enabled(self.buckets.evidence, target.name, target.version_id)
        except S3Error as error:
            # Servers differ in how they say "never had a hold" (SeaweedFS: NoSuchObjectLegalHold).
            if error.code in _NO_HOLD_CODES:
                return False
            raise

    def _refuse_under_legal_hold(self, versions: list[DeleteObject]) -> None:
        for target in versions:
            if self._on_legal_hold(target):
                raise RejectedUpload(
                    "legal_hold",
                    "this submission is under a legal hold placed by investigators and cannot be withdrawn now; "
                    "nothing was deleted",
                    409,
                )

    def _delete(self, versions: list[DeleteObject]) -> None:
        errors = list(self.client.remove_objects(self.buckets.evidence, versions, bypass_governance_mode=True))
        if errors:
            raise StorageUnavailable(f"{len(errors)} objects could not be deleted, first: {errors[0]}")
