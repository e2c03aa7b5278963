"""Witness contact details: consent, AES-GCM at rest, never in receipts/manifests/logs, supervisors only (audited),
deleted on withdrawal. Real API, real SQLite file, real S3 server."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pytest
from minio import Minio
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import Engine, select

from ingest_api.db import repository
from ingest_api.db.models import Upload, WitnessContact
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import CaseService
from ingest_api.governance.policy import Principal, Role
from ingest_api.governance.staff import SYSTEM, StaffService
from ingest_api.services.contacts import ContactCipher, ContactDetails, ContactUnreadable
from ingest_api.settings import ApiSettings
from tests.ingest_api.conftest import RunningApi
from tests.ingest_api.tus_helpers import uploader

pytestmark = pytest.mark.integration
NAME, PHONE, EMAIL = "Zoë Témoin-Quintana", "+33 6 98 76 54 32", "zoe.temoin@example.org"
DETAILS = {"name": NAME, "phone": PHONE, "email": EMAIL, "note": "evenings only"}


@dataclass(frozen=True)
class Setup:
    api: RunningApi  # the session API, pointed at an event of our own
    engine: Engine
    audit: AuditLog
    case_id: str
    tokens: dict[str, str]  # supervisor, investigator (assigned), auditor, admin


@pytest.fixture(scope="module")
def setup(api: RunningApi) -> Iterator[Setup]:
    engine = build_engine(api.settings.effective_database_url)
    sessions, audit = session_factory(engine), AuditLog(engine)
    staff, cases = StaffService(sessions=sessions, audit=audit), CaseService(sessions=sessions, audit=audit)
    tokens = {
        role.value: staff.create(actor=SYSTEM, username=f"contacts-{role.value}", role=role).token for role in Role
    }
    supervisor = Principal("contacts-supervisor", Role.SUPERVISOR)
    case = cases.create(actor=supervisor, reference="contacts/1", title="Contact details")
    cases.assign(actor=supervisor, case_id=case.id, username="contacts-investigator")
    now = datetime.now(UTC)
    with sessions() as session:
        event = repository.create_event(session=session, name="Contacts", lat=48.86, lon=2.34, radius_m=300,
                                        starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1))
    cases.link_event(actor=supervisor, case_id=case.id, event_id=event.id)
    yield Setup(RunningApi(api.base_url, api.settings, event.id), engine, audit, case.id, tokens)
    engine.dispose()


def _open(setup: Setup) -> dict[str, str]:
    response = httpx.post(f"{setup.api.base_url}/v1/events/{setup.api.event_id}/submissions", timeout=30)
    assert response.status_code == 201, response.text
    opened: dict[str, str] = response.json()
    return opened


def _leave(setup: Setup, opened: dict[str, str], body: Mapping[str, object]) -> httpx.Response:
    return httpx.put(f"{setup.api.base_url}{opened['receipt_url']}/contact", json=body, timeout=30)


def _read(setup: Setup, role: str | None, event_id: str | None = None) -> httpx.Response:
    url = f"{setup.api.base_url}/v1/cases/{setup.case_id}/events/{event_id or setup.api.event_id}/contacts"
    headers = {"Authorization": f"Bearer {setup.tokens[role]}"} if role else {}
    return httpx.get(url, headers=headers, timeout=30)


def _row(setup: Setup, submission_id: str) -> WitnessContact | None:
    with session_factory(setup.engine)() as session:
        return session.get(WitnessContact, submission_id)


def _jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_details_are_stored_only_as_ciphertext(setup: Setup) -> None:
    opened = _open(setup)
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 204
    row = _row(setup, opened["submission_id"])
    assert row is not None and row.key_id == "local"
    for plaintext in (NAME, PHONE, EMAIL, "evenings only"):
        for encoded in (plaintext.encode(), plaintext.encode("utf-16-le"), base64.b64encode(plaintext.encode())):
            assert encoded not in row.ciphertext
    database = Path(setup.api.settings.effective_database_url.removeprefix("sqlite:///"))
    on_disk = b"".join(path.read_bytes() for path in database.parent.glob(database.name + "*"))  # with -wal
    assert PHONE.encode() not in on_disk and EMAIL.encode() not in on_disk and NAME.encode() not in on_disk


def test_nothing_is_stored_without_consent_or_without_details(setup: Setup) -> None:
    opened = _open(setup)
    refused = _leave(setup, opened, {**DETAILS, "consent": False})
    assert refused.status_code == 422 and refused.json()["code"] == "consent_required"
    empty = _leave(setup, opened, {"name": " ", "note": "call me", "consent": True})
    assert empty.status_code == 422 and empty.json()["code"] == "empty_contact"
    garbled = _leave(setup, opened, {"name": "Zo\u0007\u001b[2J", "consent": True})  # terminal escapes
    assert garbled.status_code == 422 and garbled.json()["code"] == "bad_contact"
    missing = _leave(setup, opened, DETAILS)  # no consent field at all
    assert missing.status_code == 422
    assert _row(setup, opened["submission_id"]) is None


def test_details_never_reach_receipts_manifests_or_logs(
    setup: Setup, s3_client: Minio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    opened = _open(setup)
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 204
    uploader(setup.api, _jpeg(7301), opened["submission_token"]).upload()
    receipt = httpx.get(f"{setup.api.base_url}{opened['receipt_url']}", timeout=30).text
    with session_factory(setup.engine)() as session:
        query = select(Upload.manifest_key).where(Upload.submission_id == opened["submission_id"])
        manifest_key = session.scalars(query).one()
    manifest = s3_client.get_object(setup.api.settings.s3.buckets.evidence, manifest_key)
    try:
        manifest_text = manifest.read().decode()
    finally:
        manifest.close()
        manifest.release_conn()
    assert _read(setup, "supervisor").status_code == 200  # the audited read, too, logs nothing of them
    audit_text = json.dumps([entry.parameters for entry in setup.audit.entries()])
    for plaintext in (NAME, PHONE, EMAIL):
        assert plaintext not in receipt and plaintext not in manifest_text
        assert plaintext not in caplog.text and plaintext not in audit_text


def test_supervisor_of_a_linked_case_reads_them_and_the_read_is_audited(setup: Setup) -> None:
    opened = _open(setup)
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 204
    response = _read(setup, "supervisor")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    mine = [entry for entry in response.json() if entry["submission_id"] == opened["submission_id"]]
    assert len(mine) == 1
    assert {key: mine[0][key] for key in DETAILS} == DETAILS and mine[0]["problem"] is None
    last = setup.audit.entries()[-1]
    assert last.role == "supervisor" and last.action == "witness_contact_view" and last.case_id == setup.case_id
    assert opened["submission_id"] in last.result_ids
    assert json.loads(last.parameters) == {"event_id": setup.api.event_id}


def test_no_one_else_reads_them(setup: Setup) -> None:
    for role in ("investigator", "auditor", "admin"):  # the investigator is assigned to the case: still refused
        assert _read(setup, role).status_code == 403, role
    assert _read(setup, None).status_code == 401
    with session_factory(setup.engine)() as session:
        now = datetime.now(UTC)
        unlinked = repository.create_event(session=session, name="Elsewhere", lat=1, lon=1, radius_m=50,
                                           starts_at=now - timedelta(hours=1), ends_at=now)
    assert _read(setup, "supervisor", unlinked.id).status_code == 404  # a supervisor, but of no case of that event


def test_withdrawal_deletes_them(setup: Setup) -> None:
    opened = _open(setup)
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 204
    uploader(setup.api, _jpeg(7302), opened["submission_token"]).upload()
    assert httpx.delete(f"{setup.api.base_url}{opened['receipt_url']}", timeout=60).status_code == 200
    assert _row(setup, opened["submission_id"]) is None
    listed = _read(setup, "supervisor").json()
    assert opened["submission_id"] not in {entry["submission_id"] for entry in listed}
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 410


def test_the_witness_can_take_them_back_alone(setup: Setup) -> None:
    opened = _open(setup)
    assert _leave(setup, opened, {**DETAILS, "consent": True}).status_code == 204
    assert httpx.delete(f"{setup.api.base_url}{opened['receipt_url']}/contact", timeout=30).status_code == 204
    assert _row(setup, opened["submission_id"]) is None
    assert httpx.get(f"{setup.api.base_url}{opened['receipt_url']}", timeout=30).json()["withdrawn_at"] is None


def test_a_ciphertext_opens_only_with_its_key_and_on_its_own_row() -> None:
    cipher = ContactCipher(key=bytes(range(32)), key_id="k1")
    sealed = cipher.seal(ContactDetails(name=NAME, phone=PHONE), submission_id="s-1")
    assert sealed != cipher.seal(ContactDetails(name=NAME, phone=PHONE), submission_id="s-1")  # fresh nonce
    assert cipher.open(sealed, key_id="k1", submission_id="s-1") == ContactDetails(name=NAME, phone=PHONE)
    with pytest.raises(ContactUnreadable, match="altered or moved"):
        cipher.open(sealed, key_id="k1", submission_id="s-2")
    with pytest.raises(ContactUnreadable, match="altered or moved"):
        cipher.open(sealed[:-1] + bytes([sealed[-1] ^ 1]), key_id="k1", submission_id="s-1")
    with pytest.raises(ContactUnreadable, match="'k0'"):
        cipher.open(sealed, key_id="k0", submission_id="s-1")
    other = ContactCipher(key=bytes(32), key_id="k1")
    with pytest.raises(ContactUnreadable):
        other.open(sealed, key_id="k1", submission_id="s-1")


def test_settings_refuse_the_default_key_outside_local_mode_and_malformed_keys() -> None:
    production = {"mode": "production", "database_url": "postgresql+psycopg://db/witness",
                  "s3": {"secret_key": "real"}, "receipt_key": "a-real-receipt-key", "metrics_token": "scraper"}
    with pytest.raises(ValidationError, match="WITNESS_CONTACT_KEY is still the local default"):
        ApiSettings.from_mapping(production)
    real = base64.urlsafe_b64encode(bytes(range(100, 132))).decode()
    assert ApiSettings.from_mapping({**production, "contact_key": real}).contact_key_bytes == bytes(range(100, 132))
    with pytest.raises(ValidationError, match="WITNESS_CONTACT_KEY must decode to 32 bytes"):
        ApiSettings.from_mapping({"contact_key": base64.urlsafe_b64encode(b"short").decode()})
