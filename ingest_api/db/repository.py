"""Data access as keyword-only functions over a SQLAlchemy session."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ingest_api.db.models import Event, IdempotencyKey, Position, Submission, Upload

# Attempts at opening a submission for an idempotency key before giving up: each lost race means another request
# committed that key meanwhile, so the next read finds it; three losses in a row would mean the database is broken.
_KEY_ATTEMPTS = 3


@dataclass(frozen=True)
class NewSubmission:
    submission: Submission
    token: str  # shown once to the witness, stored only as a hash


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_event(
    *,
    session: Session,
    name: str,
    lat: float,
    lon: float,
    radius_m: float,
    starts_at: datetime,
    ends_at: datetime,
    retention_days: int = 365,
) -> Event:
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        raise ValueError(f"event position out of range: lat={lat}, lon={lon}")
    if radius_m <= 0:
        raise ValueError(f"event radius must be positive, got {radius_m}")
    if ends_at <= starts_at:
        raise ValueError(f"event window ends ({ends_at}) before it starts ({starts_at})")
    event = Event(
        id=str(uuid.uuid4()),
        name=name,
        lat=lat,
        lon=lon,
        radius_m=radius_m,
        starts_at=starts_at,
        ends_at=ends_at,
        accepts_uploads=True,
        retention_days=retention_days,
        created_at=datetime.now(UTC),
    )
    session.add(event)
    session.commit()
    return event


def get_event(*, session: Session, event_id: str) -> Event | None:
    return session.get(Event, event_id)


def create_submission(*, session: Session, event_id: str) -> NewSubmission:
    token = secrets.token_urlsafe(32)
    submission = Submission(
        id=str(uuid.uuid4()), event_id=event_id, token_sha256=hash_token(token), created_at=datetime.now(UTC)
    )
    session.add(submission)
    session.commit()
    return NewSubmission(submission, token)


@dataclass(frozen=True)
class KeyedSubmission:
    submission: Submission
    token: str  # derived again from the key on every retry: the key's holder gets the token back
    request_sha256: str  # the SHA-256 of the body the key was first used with
    opened: bool  # this call opened the submission (False: a retry found it)


def submission_token_for_key(*, idempotency_key: str, submission_id: str) -> str:
    """The token of the submission that `idempotency_key` opened: HMAC-SHA256 keyed by the idempotency key, so
    only the key's holder can compute it again, and the database keeps neither (only both hashes)."""
    digest = hmac.new(idempotency_key.encode(), f"witness-submission-token:{submission_id}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def open_submission_for_key(
    *, session: Session, event_id: str, idempotency_key: str, request_sha256: str, now: datetime, ttl: timedelta
) -> KeyedSubmission:
    """The submission `idempotency_key` opened in `event_id` within `ttl`, or a new one bound to the key.

    The submission and the key row are committed in one transaction, and the key is the primary key, so two
    requests racing with the same new key cannot both open one: the loser's commit fails and it reads the winner's.
    An expired key row is rebound only if it is still the row that was read (compare-and-set on `created_at`).
    The caller compares `request_sha256` with its body's: a key reused for other bytes must be refused.
    """
    key_sha256 = hash_token(idempotency_key)
    for _ in range(_KEY_ATTEMPTS):
        row = session.get(IdempotencyKey, (event_id, key_sha256))
        if row is not None and _as_utc(row.created_at) > now - ttl:
            submission = session.get(Submission, row.submission_id)
            assert submission is not None  # a foreign key; submissions are never deleted
            token = submission_token_for_key(idempotency_key=idempotency_key, submission_id=submission.id)
            return KeyedSubmission(submission, token, row.request_sha256, opened=False)
        submission_id = str(uuid.uuid4())
        token = submission_token_for_key(idempotency_key=idempotency_key, submission_id=submission_id)
        submission = Submission(id=submission_id, event_id=event_id, token_sha256=hash_token(token), created_at=now)
        try:
            session.add(submission)
            session.flush()  # before the key row: the unit of work orders inserts by relationships, and there is none
            if row is None:
                session.add(IdempotencyKey(event_id=event_id, key_sha256=key_sha256, submission_id=submission_id,
                                           request_sha256=request_sha256, created_at=now))
                session.flush()
            else:
                rebound = session.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.event_id == event_id, IdempotencyKey.key_sha256 == key_sha256,
                           IdempotencyKey.created_at == row.created_at)
                    .values(submission_id=submission_id, request_sha256=request_sha256, created_at=now)
                    .execution_options(synchronize_session=False)
                )
                if rebound.rowcount != 1:  # type: ignore[attr-defined]
                    session.rollback()
                    continue
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return KeyedSubmission(submission, token, request_sha256, opened=True)
    raise RuntimeError(f"could not bind an idempotency key in event {event_id!r} after {_KEY_ATTEMPTS} attempts")


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone-aware columns; we only ever store UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def submission_for_token(*, session: Session, token: str) -> Submission | None:
    return submission_for_token_hash(session=session, token_sha256=hash_token(token))


def submission_for_token_hash(*, session: Session, token_sha256: str) -> Submission | None:
    return session.scalars(select(Submission).where(Submission.token_sha256 == token_sha256)).one_or_none()


def submission_totals(*, session: Session, submission_id: str) -> tuple[int, int]:
    """(files, bytes) acknowledged in a submission and not withdrawn."""
    files, size = session.execute(
        select(func.count(Upload.id), func.coalesce(func.sum(Upload.size), 0)).where(
            Upload.submission_id == submission_id, Upload.withdrawn_at.is_(None)
        )
    ).one()
    return int(files), int(size)


def holds_upload(*, session: Session, submission_id: str, sha256: str) -> bool:
    """Whether these bytes were already acknowledged in this submission (a retry, answered `duplicate: true`)."""
    query = select(Upload.id).where(Upload.submission_id == submission_id, Upload.sha256 == sha256)
    return session.scalars(query).first() is not None


def other_live_references(*, session: Session, sha256: str, submission_id: str) -> int:
    """How many uploads outside `submission_id` still reference these bytes (shared originals stay)."""
    count = session.scalar(
        select(func.count(Upload.id)).where(
            Upload.sha256 == sha256, Upload.submission_id != submission_id, Upload.withdrawn_at.is_(None)
        )
    )
    return int(count or 0)


def delete_expired_idempotency_keys(*, session: Session, now: datetime, ttl: timedelta) -> int:
    """Delete the key rows older than `ttl` and commit; returns how many. Such a row no longer leads anywhere
    (`open_submission_for_key` rebinds it), so deleting it changes no answer: it only stops the table growing
    with every tokenless upload. Submissions stay (uploads refer to them)."""
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= now - ttl))
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


def record_upload(*, session: Session, upload: Upload) -> Upload:
    """Insert and commit an upload; the same bytes in the same submission give back the existing row.

    The insert comes first and the unique constraint (submission, SHA-256) decides: a new photo, the usual case,
    costs one statement instead of a read and then the insert, and a retry, or a retry racing its first attempt,
    loses on the constraint and reads the row that won.
    """
    session.add(upload)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        query = select(Upload).where(Upload.submission_id == upload.submission_id, Upload.sha256 == upload.sha256)
        return session.scalars(query).one()
    return upload


def uploads_of_submission(*, session: Session, submission_id: str) -> list[Upload]:
    return list(session.scalars(select(Upload).where(Upload.submission_id == submission_id).order_by(Upload.id)))


def positions_of_submission(*, session: Session, submission_id: str) -> list[Position]:
    return list(session.scalars(select(Position).where(Position.submission_id == submission_id).order_by(Position.id)))
