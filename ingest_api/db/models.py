"""Tables of the metadata store. The object store stays the source of truth for evidence bytes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Event(Base):
    """An incident witnesses are asked about: a place, a radius and a time window."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accepts_uploads: Mapped[bool] = mapped_column(default=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=365)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Submission(Base):
    """One witness's batch of photos. The witness holds the token; we keep only its hash."""

    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class IdempotencyKey(Base):
    """An `Idempotency-Key` a witness's device sent with its first upload, bound to the submission that upload
    opened and to the SHA-256 of the photo it carried, so a retry reaches the same submission.

    Only the key's hash is kept; the key is as secret as the submission token, which is derived from it.
    """

    __tablename__ = "idempotency_keys"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), primary_key=True)
    key_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    request_sha256: Mapped[str] = mapped_column(String(64))  # the body's SHA-256: a reuse with other bytes is refused
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Upload(Base):
    """A file acknowledged to a witness: it points at the verified original and its manifest."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("submission_id", "sha256", name="uq_upload_submission_sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(50))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(200))
    object_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    manifest_key: Mapped[str] = mapped_column(String(300))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    caption: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # What the witness's device called the file: shown back to them, never used as a key or a path.
    client_filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Position(Base):
    """Where the witness says they were, given with consent; kept apart from EXIF and marked with its source."""

    __tablename__ = "positions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("uploads.id"), nullable=True)
    source: Mapped[str] = mapped_column(String(10))  # "device" (Geolocation API) or "pin" (dropped on a map)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WitnessContact(Base):
    """How to reach a witness, given with consent: one AES-GCM ciphertext per submission, never in plain text.

    The plaintext (JSON of name, phone, email, note) is bound to its submission as associated data, so a
    ciphertext copied onto another row does not decrypt. Deleted when the witness withdraws or the event expires.
    """

    __tablename__ = "witness_contacts"

    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)  # 12-byte nonce + AES-GCM ciphertext and tag
    consented_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
