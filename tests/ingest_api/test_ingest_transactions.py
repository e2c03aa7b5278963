"""The database side of accepting a photo, seen from the outside: which statements and commits it costs, and what
the database holds (and what the API's pool has checked out) at each request to the real S3 server.

The S3 client is a real one (`PrehashedMinio` over urllib3, talking to SeaweedFS); its connection pool only notes
the moment of each request before sending it. The database is a migrated SQLite file, read back through a second
engine, so "committed" means visible to another connection.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import urllib3
from minio import Minio
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool
from urllib3 import BaseHTTPResponse

from infra.storage.client import PrehashedMinio
from infra.storage.config import S3Settings
from ingest_api.db import repository
from ingest_api.db.models import Submission, Upload
from ingest_api.db.session import build_engine
from ingest_api.services.ingest import IngestService
from ingest_api.services.spool import SpooledBody
from ingest_api.settings import AbuseLimits
from tests.reliability.workload import with_nonce

PHOTO = "exif/gaia_nikon_p6000_DSCN0010.jpg"
NOW = datetime.now(UTC)


@dataclass
class Timeline:
    """What happened, in order: database statements and commits of the API's engine, and S3 requests."""

    steps: list[str] = field(default_factory=list)

    def compressed(self) -> list[str]:
        """The steps with each run of S3 requests shown once (their number depends on the verification mode)."""
        return [step for i, step in enumerate(self.steps) if step != "s3" or i == 0 or self.steps[i - 1] != "s3"]


@dataclass(frozen=True)
class S3Moment:
    connections_checked_out: int
    submissions: frozenset[str]  # committed in the event, as another connection sees them
    uploads: int  # committed upload rows in the event


class NotingPoolManager(urllib3.PoolManager):
    """urllib3's pool manager, sending every request as usual after noting the database's state at that moment."""

    def __init__(self, timeline: Timeline, moments: list[S3Moment], api_engine: Engine, observer: Engine,
                 event_id: str) -> None:
        super().__init__(maxsize=4, retries=False)
        self.timeline, self.moments = timeline, moments
        self.api_engine, self.observer, self.event_id = api_engine, observer, event_id

    def urlopen(  # type: ignore[override]  # the same signature as urllib3's own PoolManager.urlopen
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        self.timeline.steps.append("s3")
        with self.observer.connect() as connection:
            in_event = Submission.event_id == self.event_id
            submissions = frozenset(connection.scalars(select(Submission.id).where(in_event)))
            uploads = connection.scalar(select(func.count(Upload.id)).join(Submission).where(in_event))
        pool = self.api_engine.pool
        assert isinstance(pool, QueuePool)  # SQLAlchemy's pool for a SQLite file, as for PostgreSQL
        self.moments.append(S3Moment(pool.checkedout(), submissions, int(uploads or 0)))
        return super().urlopen(method, url, redirect=redirect, **kw)


@pytest.fixture()
def observer(migrated: Engine) -> Iterator[Engine]:
    """A second engine on the same file: it sees what the API committed, and nothing else."""
    engine = build_engine(migrated.url.render_as_string(hide_password=False))
    yield engine
    engine.dispose()


def statement_and_table(sql: str) -> str:
    """"SELECT events" for `SELECT ... FROM events ...`, "INSERT uploads" for `INSERT INTO uploads ...`."""
    words = sql.split()
    if words[0] == "SELECT":
        return f"SELECT {words[words.index('FROM') + 1]}"
    return f"{words[0]} {words[1] if words[0] == 'UPDATE' else words[2]}"


@pytest.fixture()
def timeline(migrated: Engine) -> Iterator[Timeline]:
    noted = Timeline()

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        noted.steps.append(statement_and_table(sql))

    def commit(_conn: Any) -> None:
        noted.steps.append("COMMIT")

    event.listen(migrated, "before_cursor_execute", statement)
    event.listen(migrated, "commit", commit)
    yield noted
    event.remove(migrated, "before_cursor_execute", statement)
    event.remove(migrated, "commit", commit)


@dataclass(frozen=True)
class Observed:
    service: IngestService
    moments: list[S3Moment]


@pytest.fixture()
def observed(s3_settings: S3Settings, s3_client: Minio, migrated: Engine, observer: Engine,
             sessions: sessionmaker[Session], event_id: str, timeline: Timeline) -> Observed:
    moments: list[S3Moment] = []
    client = PrehashedMinio(
        s3_settings.endpoint, access_key=s3_settings.access_key,
        secret_key=s3_settings.secret_key.get_secret_value(), secure=False,
        http_client=NotingPoolManager(timeline, moments, migrated, observer, event_id),
    )
    service = IngestService(client=client, buckets=s3_settings.buckets, sessions=sessions, max_pixels=10**8,
                            api_version="test", limits=AbuseLimits())
    return Observed(service, moments)


def body_of(data: bytes) -> SpooledBody:
    return SpooledBody(io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


@pytest.fixture()
def photo(shared_data: Path, tmp_path: Path) -> bytes:
    return with_nonce((shared_data / PHOTO).read_bytes(), f"transactions {tmp_path.name}")


@pytest.mark.integration
@pytest.mark.parametrize("named_by", ["nothing", "idempotency-key", "token"])
def test_the_submission_is_committed_before_s3_and_the_upload_row_after_with_no_connection_held(
    observed: Observed, sessions: sessionmaker[Session], event_id: str, photo: bytes, named_by: str
) -> None:
    token = key = None
    if named_by == "token":
        with sessions() as session:
            token = repository.create_submission(session=session, event_id=event_id).token
    elif named_by == "idempotency-key":
        key = "a-fresh-idempotency-key-0001"
    receipt = observed.service.accept_photo(event_id=event_id, submission_token=token, body=body_of(photo),
                                            idempotency_key=key)
    assert observed.moments, "the photo went to S3"
    assert [m.connections_checked_out for m in observed.moments] == [0] * len(observed.moments), (
        "a database connection was held across an S3 request"
    )
    assert all(receipt.submission_id in m.submissions for m in observed.moments), "the submission came first"
    assert [m.uploads for m in observed.moments] == [0] * len(observed.moments), "the upload row came last"
    with sessions() as session:
        assert repository.holds_upload(session=session, submission_id=receipt.submission_id, sha256=receipt.sha256)


@pytest.mark.integration
def test_a_new_photo_costs_one_read_two_inserts_and_two_commits(
    observed: Observed, event_id: str, photo: bytes, timeline: Timeline
) -> None:
    """The event check and the new submission share one transaction; the upload row is inserted without a read
    first (the unique constraint answers for a duplicate)."""
    observed.service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo))
    assert timeline.compressed() == [
        "SELECT events", "INSERT submissions", "COMMIT", "s3", "INSERT uploads", "COMMIT",
    ]


@pytest.mark.integration
def test_the_same_photo_again_in_its_submission_is_the_first_receipt(
    observed: Observed, event_id: str, photo: bytes
) -> None:
    first = observed.service.accept_photo(event_id=event_id, submission_token=None, body=body_of(photo))
    assert first.submission_token is not None and not first.duplicate
    again = observed.service.accept_photo(event_id=event_id, submission_token=first.submission_token,
                                          body=body_of(photo))
    assert again.duplicate and (again.submission_id, again.received_at) == (first.submission_id, first.received_at)


def test_recording_the_same_bytes_twice_gives_back_the_first_row(sessions: sessionmaker[Session],
                                                                  event_id: str) -> None:
    with sessions() as session:
        submission_id = repository.create_submission(session=session, event_id=event_id).submission.id

    def upload(key: str) -> Upload:
        return Upload(submission_id=submission_id, sha256="c" * 64, size=3, media_type="image/jpeg", width=1,
                      height=1, object_key=key, object_version="v", manifest_key="m", received_at=NOW)

    with sessions() as session:
        first = repository.record_upload(session=session, upload=upload("first"))
    with sessions() as session:
        again = repository.record_upload(session=session, upload=upload("second"))
        assert again.id == first.id and again.object_key == "first"
        assert len(repository.uploads_of_submission(session=session, submission_id=submission_id)) == 1
