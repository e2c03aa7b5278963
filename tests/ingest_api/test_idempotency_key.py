"""`Idempotency-Key` on a tokenless photo upload: one submission per key, on a migrated SQLite store, through the
ingest service over the real S3 server, and through HTTP (header validation, the OpenAPI description)."""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from minio import Minio
from sqlalchemy import Engine, event, func, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from infra.storage.client import build_client
from infra.storage.config import S3Settings
from infra.storage.evidence import manifest_key
from ingest_api.db import repository
from ingest_api.db.migrate import alembic_config, upgrade
from ingest_api.db.models import Base, IdempotencyKey, Submission
from ingest_api.routes.photos import unquoted
from ingest_api.services.ingest import IngestService, StorageUnavailable
from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.spool import SpooledBody
from tests.ingest_api.conftest import RunningApi, free_port
from tests.reliability.workload import with_nonce

TTL = timedelta(hours=24)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SHA_A, SHA_B = "a" * 64, "b" * 64
PHOTO = "exif/gaia_nikon_p6000_DSCN0010.jpg"
T = TypeVar("T")


@pytest.fixture()
def event_id(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        return repository.create_event(session=session, name="key test", lat=1.0, lon=2.0, radius_m=10,
                                       starts_at=NOW - TTL, ends_at=NOW + TTL).id


def open_for_key(sessions: sessionmaker[Session], event_id: str, key: str, sha256: str = SHA_A,
                 now: datetime = NOW) -> repository.KeyedSubmission:
    with sessions() as session:
        return repository.open_submission_for_key(session=session, event_id=event_id, idempotency_key=key,
                                                  request_sha256=sha256, now=now, ttl=TTL)


def submissions_in(sessions: sessionmaker[Session], event_id: str) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count(Submission.id)).where(Submission.event_id == event_id)) or 0)


def in_threads(count: int, call: Callable[[], T]) -> list[T]:
    """`call` in `count` threads released together; every result, or the first exception raised."""
    barrier, results, errors = threading.Barrier(count), [], []

    def run() -> None:
        barrier.wait()
        try:
            results.append(call())
        except Exception as error:  # re-raised below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == count
    return results


# ---- the store --------------------------------------------------------------------------------------------------


def test_migration_0007_matches_the_model_and_downgrades(migrated: Engine) -> None:
    with migrated.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [d for d in differences if "audit_entries" not in repr(d)] == []
    url = migrated.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0006")
    assert "idempotency_keys" not in inspect(migrated).get_table_names()
    upgrade(url)
    assert "idempotency_keys" in inspect(migrated).get_table_names()


def test_the_same_key_finds_the_same_submission_and_gives_its_token_again(
    sessions: sessionmaker[Session], event_id: str
) -> None:
    key = str(uuid.uuid4())
    first = open_for_key(sessions, event_id, key)
    again = open_for_key(sessions, event_id, key, sha256=SHA_B, now=NOW + TTL - timedelta(seconds=1))
    assert first.opened and not again.opened
    assert again.submission.id == first.submission.id and again.token == first.token
    assert again.request_sha256 == SHA_A, "the caller compares it with its body and refuses other bytes"
    with sessions() as session:
        found = repository.submission_for_token(session=session, token=again.token)
        assert found is not None and found.id == first.submission.id, "the token is the submission's"
        [row] = session.scalars(select(IdempotencyKey)).all()
        assert row.key_sha256 == hashlib.sha256(key.encode()).hexdigest(), "only the key's hash is stored"
    other = open_for_key(sessions, event_id, str(uuid.uuid4()))
    assert other.opened and other.submission.id != first.submission.id and other.token != first.token
    assert submissions_in(sessions, event_id) == 2


def test_a_key_is_scoped_to_its_event(sessions: sessionmaker[Session], event_id: str) -> None:
    with sessions() as session:
        elsewhere = repository.create_event(session=session, name="other", lat=1.0, lon=2.0, radius_m=10,
                                            starts_at=NOW - TTL, ends_at=NOW + TTL).id
    key = str(uuid.uuid4())
    assert open_for_key(sessions, event_id, key).submission.id != open_for_key(sessions, elsewhere, key).submission.id


def test_an_expired_key_opens_a_new_submission(sessions: sessionmaker[Session], event_id: str) -> None:
    key = str(uuid.uuid4())
    first = open_for_key(sessions, event_id, key)
    later = open_for_key(sessions, event_id, key, sha256=SHA_B, now=NOW + TTL)
    assert later.opened and later.submission.id != first.submission.id and later.request_sha256 == SHA_B
    # the key now leads to the new submission; the old one is still the old token's
    assert open_for_key(sessions, event_id, key, now=NOW + TTL).submission.id == later.submission.id
    with sessions() as session:
        old = repository.submission_for_token(session=session, token=first.token)
        assert old is not None and old.id == first.submission.id


def test_the_sweep_deletes_only_expired_keys_and_an_expired_key_still_opens_a_new_submission(
    sessions: sessionmaker[Session], event_id: str
) -> None:
    old = open_for_key(sessions, event_id, "key-old", now=NOW - TTL)
    fresh = open_for_key(sessions, event_id, "key-fresh", now=NOW - TTL + timedelta(seconds=1))
    with sessions() as session:
        assert repository.delete_expired_idempotency_keys(session=session, now=NOW, ttl=TTL) == 1
        assert session.scalars(select(IdempotencyKey.submission_id)).all() == [fresh.submission.id]
        assert session.get(Submission, old.submission.id) is not None  # submissions are kept
    again = open_for_key(sessions, event_id, "key-old")
    assert again.opened and again.submission.id != old.submission.id
    assert not open_for_key(sessions, event_id, "key-fresh").opened


def test_racing_requests_with_one_new_key_open_one_submission(sessions: sessionmaker[Session], event_id: str) -> None:
    key = str(uuid.uuid4())
    results = in_threads(8, lambda: open_for_key(sessions, event_id, key))
    assert len({result.submission.id for result in results}) == 1
    assert sum(result.opened for result in results) == 1
    assert submissions_in(sessions, event_id) == 1


@pytest.mark.parametrize("expired", [False, True], ids=["new-key", "expired-key"])
def test_the_loser_of_a_race_reads_the_winners_submission(
    sessions: sessionmaker[Session], event_id: str, expired: bool
) -> None:
    """Deterministic interleaving: another request commits the key between this one's read and its write."""
    key, now = str(uuid.uuid4()), NOW + (TTL if expired else timedelta(0))
    if expired:
        open_for_key(sessions, event_id, key)
    winner: list[repository.KeyedSubmission] = []
    with sessions() as session:

        @event.listens_for(session, "before_flush", once=True)
        def competitor_commits_first(*_: Any) -> None:
            winner.append(open_for_key(sessions, event_id, key, now=now))

        loser = repository.open_submission_for_key(session=session, event_id=event_id, idempotency_key=key,
                                                   request_sha256=SHA_A, now=now, ttl=TTL)
    assert winner[0].opened and not loser.opened
    assert loser.submission.id == winner[0].submission.id and loser.token == winner[0].token
    assert submissions_in(sessions, event_id) == (2 if expired else 1)


# ---- the ingest service over the real S3 server -----------------------------------------------------------------


@pytest.fixture()
def service(s3_client: Minio, s3_settings: S3Settings, sessions: sessionmaker[Session]) -> IngestService:
    return IngestService(client=s3_client, buckets=s3_settings.buckets, sessions=sessions, max_pixels=10**8,
                         api_version="test")


def body_of(data: bytes) -> SpooledBody:
    return SpooledBody(io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture()
def photo(shared_data: Path, tmp_path: Path) -> bytes:
    return with_nonce((shared_data / PHOTO).read_bytes(), f"idempotency {tmp_path.name}")


def manifests_of(client: Minio, bucket: str, event_id: str) -> list[str]:
    return [str(item.object_name) for item in client.list_objects(bucket, prefix=f"manifests/{event_id}/",
                                                                  recursive=True)]


@pytest.mark.integration
def test_a_retried_upload_with_its_key_is_one_photo_in_one_submission(
    service: IngestService, s3_client: Minio, event_id: str, photo: bytes
) -> None:
    key = str(uuid.uuid4())
    first = service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    retry = service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    assert retry.submission_id == first.submission_id and retry.submission_token == first.submission_token
    assert first.submission_token and (first.duplicate, retry.duplicate) == (False, True)
    assert manifests_of(s3_client, service.buckets.evidence, event_id) == [
        manifest_key(event_id=event_id, submission_id=first.submission_id, sha256=first.sha256)
    ]
    with pytest.raises(RejectedUpload) as refused:
        service.accept_photo(event_id=event_id, submission_token=None, body=body_of(with_nonce(photo, "other")),
                             idempotency_key=key)
    assert refused.value.status == 422 and refused.value.code == "idempotency_key_reused"
    assert len(manifests_of(s3_client, service.buckets.evidence, event_id)) == 1, "nothing stored for the refusal"


@pytest.mark.integration
def test_the_key_is_bound_before_the_store_so_a_retry_after_a_failed_store_finds_it(
    service: IngestService, s3_settings: S3Settings, event_id: str, photo: bytes
) -> None:
    key = str(uuid.uuid4())
    unreachable = build_client(s3_settings.model_copy(update={"endpoint": f"127.0.0.1:{free_port()}"}))
    broken = IngestService(client=unreachable, buckets=service.buckets, sessions=service.sessions,
                           max_pixels=10**8, api_version="test")
    with pytest.raises(StorageUnavailable):
        broken.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    with service.sessions() as session:
        [bound] = session.scalars(select(IdempotencyKey).where(IdempotencyKey.event_id == event_id)).all()
    receipt = service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    assert receipt.submission_id == bound.submission_id and receipt.duplicate is False


@pytest.mark.integration
def test_a_key_of_a_withdrawn_submission_is_refused(
    service: IngestService, s3_client: Minio, event_id: str, photo: bytes
) -> None:
    key = str(uuid.uuid4())
    first = service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    with service.sessions() as session:
        withdrawn = session.get(Submission, first.submission_id)
        assert withdrawn is not None
        withdrawn.withdrawn_at = datetime.now(UTC)
        session.commit()
    with pytest.raises(RejectedUpload) as refused:
        service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo), idempotency_key=key)
    assert (refused.value.status, refused.value.code) == (410, "withdrawn")


@pytest.mark.integration
def test_two_simultaneous_uploads_with_one_key_make_one_photo(
    service: IngestService, s3_client: Minio, event_id: str, photo: bytes
) -> None:
    key = str(uuid.uuid4())
    receipts = in_threads(2, lambda: service.accept_photo(event_id=event_id, submission_token=None,
                                                           body=body_of(photo), idempotency_key=key))
    assert len({(receipt.submission_id, receipt.submission_token) for receipt in receipts}) == 1
    assert sorted(receipt.duplicate for receipt in receipts) == [False, True]
    assert len(manifests_of(s3_client, service.buckets.evidence, event_id)) == 1
    assert submissions_in(service.sessions, event_id) == 1


# ---- HTTP -------------------------------------------------------------------------------------------------------


def test_a_quoted_key_names_the_same_key_as_a_bare_one() -> None:
    assert unquoted('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert unquoted("8e03978e-40d5-43e8-bc93-6894a57f9324") == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    assert unquoted('"half-quoted-key-value') == '"half-quoted-key-value'


@pytest.mark.integration
def test_the_key_over_http_same_submission_and_bad_keys_refused(
    api: RunningApi, shared_data: Path, tmp_path: Path
) -> None:
    url = f"{api.base_url}/v1/events/{api.event_id}/photos"
    photo = with_nonce((shared_data / PHOTO).read_bytes(), f"http {tmp_path.name}")
    key = str(uuid.uuid4())
    first = httpx.post(url, content=photo, headers={"Idempotency-Key": key}, timeout=60)
    retry = httpx.post(url, content=photo, headers={"Idempotency-Key": f'"{key}"'}, timeout=60)
    assert first.status_code == retry.status_code == 201, (first.text, retry.text)
    assert retry.json()["submission_id"] == first.json()["submission_id"]
    assert retry.json()["submission_token"] == first.json()["submission_token"]
    reused = httpx.post(url, content=with_nonce(photo, "other"), headers={"Idempotency-Key": key}, timeout=60)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused", reused.text
    for bad in ("too-short", "x" * 256, "spaces are not allowed here"):
        refused = httpx.post(url, content=photo, headers={"Idempotency-Key": bad}, timeout=60)
        assert refused.status_code == 422 and "idempotency-key" in refused.text.lower(), refused.text


@pytest.mark.integration
def test_the_openapi_schema_documents_the_key(api: RunningApi) -> None:
    operation = httpx.get(f"{api.base_url}/openapi.json").json()["paths"]["/v1/events/{event_id}/photos"]["post"]
    [header] = [p for p in operation["parameters"] if p["in"] == "header" and p["name"].lower() == "idempotency-key"]
    schema = header["schema"]["anyOf"][0] if "anyOf" in header["schema"] else header["schema"]
    assert (schema["minLength"], schema["maxLength"], schema["pattern"]) == (16, 255, "^[!-~]+$")
    assert "secret" in header["description"] and "422" in header["description"]
    assert {"201", "400", "401", "404", "410", "413", "415", "422", "429", "503"} <= set(operation["responses"])
