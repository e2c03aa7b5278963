"""Witness contact details: optional, given with explicit consent, encrypted at rest, read only by supervisors.

    contacts = ContactService(sessions=sessions, audit=audit_log, cipher=ContactCipher(key=key32, key_id="2026-11"))
    contacts.store(token=receipt_token, details=ContactDetails(name="A. Witness", phone="+33 6 12 34 56 78"),
                   consent=True)
    contacts.for_case_event(actor=supervisor, case_id=case_id, event_id=event_id)  # audited; plaintext only here

One JSON document per submission is encrypted with AES-256-GCM (key from `WITNESS_CONTACT_KEY`), the submission id
bound in as associated data so a ciphertext copied onto another row does not open. The details never enter
manifests, receipts, logs or audit parameters: the audit entry of a read names the submissions whose details were
shown (result ids), never the details. Withdrawal and retention expiry delete the row.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ingest_api.db import repository
from ingest_api.db.models import Submission, WitnessContact
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.policy import Action, PermissionDenied, Principal, can_access_case, require
from ingest_api.governance.staff import GovernanceNotFound
from ingest_api.governance.tables import Case, CaseEvent
from ingest_api.services.sniff import RejectedUpload

NONCE_BYTES = 12


class ContactUnreadable(Exception):
    """A stored ciphertext does not open with this key (another key id, or altered)."""


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")  # lone surrogates from JSON escapes cannot be stored or shown back
    except UnicodeEncodeError:
        return False
    return value.isprintable()


@dataclass(frozen=True)
class ContactDetails:
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    note: str | None = None  # when or how the witness prefers to be reached

    def cleaned(self) -> ContactDetails:
        """Blank fields become None; refuses details with nothing in them (HTTP 422)."""
        values = {key: (value.strip() or None) if value else None for key, value in asdict(self).items()}
        for key, value in values.items():
            if value is not None and not _is_text(value):
                raise RejectedUpload("bad_contact", f"{key} holds control characters or is not valid Unicode", 422)
        cleaned = ContactDetails(**values)
        if not (cleaned.name or cleaned.phone or cleaned.email):
            raise RejectedUpload("empty_contact", "give at least a name, a phone number or an email address", 422)
        return cleaned


@dataclass(frozen=True)
class ContactCipher:
    key: bytes = field(repr=False)
    key_id: str

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError(f"the contact key must be 32 bytes (AES-256), got {len(self.key)}")

    def seal(self, details: ContactDetails, *, submission_id: str) -> bytes:
        """12-byte random nonce + AES-GCM ciphertext and tag of the details' JSON."""
        nonce = os.urandom(NONCE_BYTES)
        plaintext = json.dumps(asdict(details), sort_keys=True, ensure_ascii=False).encode()
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext, submission_id.encode())

    def open(self, blob: bytes, *, key_id: str, submission_id: str) -> ContactDetails:
        if key_id != self.key_id:
            raise ContactUnreadable(f"encrypted under key {key_id!r}; this server holds key {self.key_id!r}")
        try:
            plaintext = AESGCM(self.key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], submission_id.encode())
        except InvalidTag as error:
            raise ContactUnreadable("the ciphertext does not open with this key (altered or moved)") from error
        return ContactDetails(**json.loads(plaintext))


@dataclass(frozen=True)
class ContactView:
    """What a supervisor sees: the details, or why a row could not be read (one bad row hides no others)."""

    submission_id: str
    consented_at: datetime
    details: ContactDetails | None
    problem: str | None = None


@dataclass(frozen=True)
class ContactService:
    sessions: sessionmaker[Session]
    audit: AuditLog
    cipher: ContactCipher

    def _live_submission(self, session: Session, token: str) -> Submission:
        submission = repository.submission_for_token(session=session, token=token)
        if submission is None:
            raise RejectedUpload("unknown_receipt", "no submission has this receipt token", 404)
        if submission.withdrawn_at is not None:
            raise RejectedUpload("withdrawn", "this submission was withdrawn by the witness", 410)
        return submission

    def store(self, *, token: str, details: ContactDetails, consent: bool) -> None:
        """Store (or replace) the submission's contact details; refused without the witness's consent."""
        if not consent:
            raise RejectedUpload(
                "consent_required", "contact details are only stored when the witness ticks the consent box", 422
            )
        cleaned = details.cleaned()
        with self.sessions() as session:
            submission = self._live_submission(session, token)
            row = session.get(WitnessContact, submission.id) or WitnessContact(submission_id=submission.id)
            row.key_id = self.cipher.key_id
            row.ciphertext = self.cipher.seal(cleaned, submission_id=submission.id)
            row.consented_at = datetime.now(UTC)
            session.add(row)
            session.commit()

    def erase(self, *, token: str) -> bool:
        """The witness takes their details back (photos stay); True if there were any."""
        with self.sessions() as session:
            submission = repository.submission_for_token(session=session, token=token)
            if submission is None:
                raise RejectedUpload("unknown_receipt", "no submission has this receipt token", 404)
            row = session.get(WitnessContact, submission.id)
            if row is not None:
                session.delete(row)
                session.commit()
            return row is not None

    def for_case_event(self, *, actor: Principal, case_id: str, event_id: str) -> list[ContactView]:
        """Contact details of the event's live submissions, for a supervisor of a case the event is linked to."""
        require(actor, Action.VIEW_WITNESS_CONTACT)
        if not can_access_case(actor, case_id):
            raise PermissionDenied(f"{actor.user_id} does not oversee case {case_id!r}")
        with self.sessions() as session:
            if session.get(Case, case_id) is None:
                raise GovernanceNotFound(f"no case {case_id!r}")
            if session.get(CaseEvent, (case_id, event_id)) is None:
                raise GovernanceNotFound(f"event {event_id!r} is not linked to case {case_id!r}")
            rows = session.execute(
                select(WitnessContact)
                .join(Submission, Submission.id == WitnessContact.submission_id)
                .where(Submission.event_id == event_id, Submission.withdrawn_at.is_(None))
                .order_by(WitnessContact.consented_at, WitnessContact.submission_id)
            ).scalars().all()
            views = [self._view(row) for row in rows]
        # Audited before anything is returned: a read the log cannot record does not happen.
        self.audit.append(AuditRecord(
            actor=actor.user_id, role=actor.role.value, action="witness_contact_view", case_id=case_id,
            parameters={"event_id": event_id}, result_ids=[view.submission_id for view in views],
        ))
        return views

    def _view(self, row: WitnessContact) -> ContactView:
        consented_at = row.consented_at if row.consented_at.tzinfo else row.consented_at.replace(tzinfo=UTC)
        try:
            details = self.cipher.open(row.ciphertext, key_id=row.key_id, submission_id=row.submission_id)
        except ContactUnreadable as error:
            return ContactView(row.submission_id, consented_at, None, str(error))
        return ContactView(row.submission_id, consented_at, details)
