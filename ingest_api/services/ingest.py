"""Accepting one witness photo: validate, store durably, verify, record, and only then acknowledge."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from minio import Minio
from minio.error import S3Error
from sqlalchemy.orm import Session, sessionmaker
from urllib3.exceptions import HTTPError

from infra.faults import CrashPoint, crash_point
from infra.storage.config import BucketNames
from infra.storage.evidence import StoredObject, manifest_key, store_json, store_original
from infra.storage.integrity import IntegrityError, Verification
from ingest_api.db import repository
from ingest_api.db.models import Upload
from ingest_api.services.limits import check_submission_budget
from ingest_api.services.sniff import RejectedUpload, SniffedImage, sniff_image
from ingest_api.services.spool import SpooledBody
from ingest_api.services.store_slots import StoreBusy, StoreWriteSlots
from ingest_api.settings import AbuseLimits


class StorageUnavailable(Exception):
    """The object store failed or could not prove the write; the client should retry the same upload."""


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; we only ever store UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Receipt:
    submission_id: str
    event_id: str
    sha256: str
    size: int
    media_type: str
    width: int
    height: int
    received_at: datetime
    duplicate: bool
    submission_token: str | None  # only when this upload opened a new submission, or its Idempotency-Key did


@dataclass(frozen=True)
class IngestService:
    client: Minio
    buckets: BucketNames
    sessions: sessionmaker[Session]
    max_pixels: int
    api_version: str
    # How writes are proven; the app asks the server once at start-up (`choose_verification`).
    verification: Verification = Verification.READ_BACK
    # How long a tokenless upload's Idempotency-Key leads back to its submission: a phone retries within minutes
    # or hours; a day later the same key opens a new submission (Stripe keeps keys 24 h too).
    idempotency_ttl: timedelta = timedelta(hours=24)
    # Per-submission budgets (files, bytes); None leaves them unchecked (the resumable path checks its own).
    limits: AbuseLimits | None = None
    # How many originals are written to the store at once (`ApiSettings.store_write_slots`).
    store_slots: StoreWriteSlots = field(default_factory=StoreWriteSlots.unlimited)

    def sweep_idempotency_keys(self, now: datetime | None = None) -> int:
        """Delete Idempotency-Key rows past `idempotency_ttl` (they lead nowhere any more); returns how many."""
        with self.sessions() as session:
            return repository.delete_expired_idempotency_keys(
                session=session, now=now or datetime.now(UTC), ttl=self.idempotency_ttl)

    def accept_photo(
        self,
        *,
        event_id: str,
        submission_token: str | None,
        body: SpooledBody,
        caption: str | None = None,
        filename: str | None = None,
        submission_token_sha256: str | None = None,
        idempotency_key: str | None = None,
    ) -> Receipt:
        """Store one photo. The submission is named by its token, or by the token's hash (resumable uploads
        keep only the hash on disk); with neither, a new submission is opened and its token returned.

        A tokenless upload carrying an `idempotency_key` opens its submission once per key (per event, within
        `idempotency_ttl`): a retry with the key gets the receipt of the same submission and its token again, since
        the key is a secret only the witness's device holds, as the token is. The same key with other bytes is
        refused (422). With a token the key is not needed and ignored: that upload is idempotent already.

        The submission (and its key) is committed before anything is written to S3, so a manifest always names a
        submission the retry can find; the upload row only after the original and its manifest are stored and
        proven. That is two transactions per photo, each in one short session: the checks and the submission,
        then the upload row. Neither spans an S3 call: a connection held across the store would cap the number
        of uploads in flight at the size of the connection pool.
        """
        if submission_token is not None:
            submission_token_sha256 = repository.hash_token(submission_token)
        with self.sessions() as session:
            submission_id, image, new_token = self._open_submission(
                session, event_id, submission_token_sha256, idempotency_key, body
            )
        received_at = datetime.now(UTC)
        stored = self._store(body, image.media_type)
        manifest = manifest_key(event_id=event_id, submission_id=submission_id, sha256=body.sha256)
        self._write_manifest(
            manifest,
            {
                "event_id": event_id,
                "submission_id": submission_id,
                "sha256": body.sha256,
                "size": body.size,
                "media_type": image.media_type,
                "width": image.width,
                "height": image.height,
                "object_key": stored.key,
                "object_version": stored.version_id,
                "received_at": received_at.isoformat(),
                "api_version": self.api_version,
                "caption": caption,
                "client_filename": filename,
            },
        )
        crash_point(CrashPoint.INGEST_MANIFEST_STORED)
        upload = Upload(
            submission_id=submission_id,
            sha256=body.sha256,
            size=body.size,
            media_type=image.media_type,
            width=image.width,
            height=image.height,
            object_key=stored.key,
            object_version=stored.version_id,
            manifest_key=manifest,
            received_at=received_at,
            caption=caption,
            client_filename=filename,
        )
        with self.sessions() as session:
            row = repository.record_upload(session=session, upload=upload)
            recorded_at = _as_utc(row.received_at)
        return Receipt(
            submission_id=submission_id,
            event_id=event_id,
            sha256=body.sha256,
            size=body.size,
            media_type=image.media_type,
            width=image.width,
            height=image.height,
            received_at=recorded_at,
            # This submission had already been given a receipt for these bytes (not merely: the store had them,
            # which is also true after a retried upload whose first attempt failed before its receipt).
            duplicate=row is not upload,
            submission_token=new_token,
        )

    def _open_submission(
        self, session: Session, event_id: str, token_sha256: str | None, idempotency_key: str | None,
        body: SpooledBody,
    ) -> tuple[str, SniffedImage, str | None]:
        """(submission id, the sniffed image, the new token or None) for this upload, in one session.

        Checks that the event accepts uploads and that a token names one of its live submissions (within its
        budget); sniffs the photo; without a token opens the submission, committed. Refusals keep their order:
        the event, then the token, then the bytes, and nothing is written for a refused photo."""
        event = repository.get_event(session=session, event_id=event_id)
        if event is None:
            raise RejectedUpload("unknown_event", f"no event with id {event_id!r}", status=404)
        if not event.accepts_uploads:
            raise RejectedUpload("event_closed", f"event {event_id!r} no longer accepts uploads", status=410)
        if token_sha256 is not None:
            submission_id = self._check_submission(session, event_id, token_sha256, body)
            return submission_id, sniff_image(body.file, max_pixels=self.max_pixels), None
        # Header only (no pixels decoded): the connection this session holds waits well under a millisecond.
        image = sniff_image(body.file, max_pixels=self.max_pixels)
        submission_id, token = self._new_submission(session, event_id, idempotency_key, body.sha256)
        return submission_id, image, token

    def _check_submission(self, session: Session, event_id: str, token_sha256: str, body: SpooledBody) -> str:
        """The id of the live submission of `event_id` whose token hashes to `token_sha256`, if it has room."""
        submission = repository.submission_for_token_hash(session=session, token_sha256=token_sha256)
        if submission is None or submission.event_id != event_id:
            raise RejectedUpload("bad_token", "the submission token is not valid for this event", 401)
        if submission.withdrawn_at is not None:
            raise RejectedUpload("withdrawn", "this submission was withdrawn by the witness", 410)
        if self.limits is not None and not repository.holds_upload(
            session=session, submission_id=submission.id, sha256=body.sha256
        ):
            files, size = repository.submission_totals(session=session, submission_id=submission.id)
            check_submission_budget(self.limits, files=files + 1, size=size + body.size)
        return submission.id

    def _new_submission(
        self, session: Session, event_id: str, idempotency_key: str | None, sha256: str
    ) -> tuple[str, str]:
        """(id, token) of a new submission, committed, or of the one `idempotency_key` opened for these bytes."""
        if idempotency_key is None:
            created = repository.create_submission(session=session, event_id=event_id)
            return created.submission.id, created.token
        keyed = repository.open_submission_for_key(
            session=session, event_id=event_id, idempotency_key=idempotency_key, request_sha256=sha256,
            now=datetime.now(UTC), ttl=self.idempotency_ttl,
        )
        if keyed.request_sha256 != sha256:
            raise RejectedUpload(
                "idempotency_key_reused",
                f"this Idempotency-Key was already used for a different photo (not SHA-256 {sha256}); "
                "send a new key with each new photo and the same key only when retrying that photo",
                422,
            )
        if keyed.submission.withdrawn_at is not None:
            raise RejectedUpload("withdrawn", "this submission was withdrawn by the witness", 410)
        return keyed.submission.id, keyed.token

    def _store(self, body: SpooledBody, media_type: str) -> StoredObject:
        body.file.seek(0)
        try:
            with self.store_slots.held():
                return store_original(
                    self.client,
                    self.buckets.evidence,
                    stream=body.file,
                    size=body.size,
                    sha256=body.sha256,
                    content_type=media_type,
                    verification=self.verification,
                )
        except StoreBusy as error:
            raise StorageUnavailable(f"the evidence store is busy: {error}") from error
        except IntegrityError as error:
            raise StorageUnavailable(
                f"the stored copy failed verification, nothing was acknowledged: {error}"
            ) from error
        except (S3Error, HTTPError, OSError) as error:
            raise StorageUnavailable(f"the evidence store is unavailable: {error}") from error

    def _write_manifest(self, key: str, document: dict[str, object]) -> None:
        try:
            store_json(self.client, self.buckets.evidence, key, document, verification=self.verification)
        except IntegrityError as error:
            raise StorageUnavailable(f"the manifest failed verification: {error}") from error
        except (S3Error, HTTPError, OSError) as error:
            raise StorageUnavailable(f"the evidence store is unavailable: {error}") from error
