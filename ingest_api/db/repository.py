"""Data access as keyword-only functions over a SQLAlchemy session."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ingest_api.db.models import Event, Position, Submission, Upload


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


def other_live_references(*, session: Session, sha256: str, submission_id: str) -> int:
    """How many uploads outside `submission_id` still reference these bytes (shared originals stay)."""
    count = session.scalar(
        select(func.count(Upload.id)).where(
            Upload.sha256 == sha256, Upload.submission_id != submission_id, Upload.withdrawn_at.is_(None)
        )
    )
    return int(count or 0)


def record_upload(*, session: Session, upload: Upload) -> Upload:
    """Insert an upload; the same bytes in the same submission give back the existing row."""
    existing = session.scalars(
        select(Upload).where(Upload.submission_id == upload.submission_id, Upload.sha256 == upload.sha256)
    ).one_or_none()
    if existing is not None:
        return existing
    session.add(upload)
    session.commit()
    return upload


def uploads_of_submission(*, session: Session, submission_id: str) -> list[Upload]:
    return list(session.scalars(select(Upload).where(Upload.submission_id == submission_id).order_by(Upload.id)))


def positions_of_submission(*, session: Session, submission_id: str) -> list[Position]:
    return list(session.scalars(select(Position).where(Position.submission_id == submission_id).order_by(Position.id)))
