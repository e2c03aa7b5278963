"""Write slots: how many originals one API process writes to the store at once, and what a witness gets when none
comes free. Unit tests of `StoreWriteSlots`, then the service against the real S3 server, then the API over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3
import uvicorn
from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from urllib3 import BaseHTTPResponse

from infra.storage.client import PrehashedMinio
from infra.storage.config import S3Settings
from ingest_api.app import create_app
from ingest_api.db.models import Upload
from ingest_api.services.ingest import IngestService, StorageUnavailable
from ingest_api.services.metrics import UploadMetrics
from ingest_api.services.store_slots import StoreBusy, StoreWriteSlots
from ingest_api.settings import AbuseLimits
from tests.ingest_api.conftest import api_settings, create_test_event
from tests.ingest_api.test_ingest_transactions import body_of
from tests.reliability.workload import with_nonce

PHOTO = "exif/gaia_nikon_p6000_DSCN0010.jpg"
NOW = datetime.now(UTC)


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.01)


# ---- StoreWriteSlots ---------------------------------------------------------------------------------------


def test_no_more_writes_than_slots_are_in_flight_and_a_freed_slot_admits_the_next() -> None:
    slots = StoreWriteSlots(2, wait_s=30)
    inside, proceed = [0], threading.Event()
    lock = threading.Lock()

    def write() -> None:
        with slots.held():
            with lock:
                inside[0] += 1
            proceed.wait()
            with lock:
                inside[0] -= 1

    with ThreadPoolExecutor(5) as pool:
        futures = [pool.submit(write) for _ in range(5)]
        wait_until(lambda: inside[0] == 2)
        time.sleep(0.2)  # three more writers are waiting; none may get in while the two hold their slots
        assert inside[0] == 2
        proceed.set()
        for future in futures:
            future.result(timeout=10)
    assert inside[0] == 0


def test_a_freed_slot_goes_to_the_longest_waiter_and_no_newcomer_overtakes() -> None:
    slots, order = StoreWriteSlots(1, wait_s=30), []

    def write(name: str) -> None:
        with slots.held():
            order.append(name)

    def queued(count: int) -> Callable[[], bool]:
        return lambda: slots.waiting == count

    with ThreadPoolExecutor(4) as pool, slots.held():
        futures = []
        for position, name in enumerate("ABCD", start=1):
            futures.append(pool.submit(write, name))
            wait_until(queued(position))
    for future in futures:
        future.result(timeout=10)
    assert order == list("ABCD")


def test_a_writer_that_waits_past_its_limit_gets_store_busy_and_leaves_the_slots_as_they_were() -> None:
    slots = StoreWriteSlots(1, wait_s=0.05)
    with slots.held():
        with pytest.raises(StoreBusy, match="no write slot came free within 0.05 s"):
            with slots.held():
                pass
    with slots.held():  # the failed wait took nothing: the one slot is free again
        pass


def test_without_a_limit_every_writer_goes_in_at_once() -> None:
    slots, barrier = StoreWriteSlots.unlimited(), threading.Barrier(8, timeout=10)

    def write() -> None:
        with slots.held():
            barrier.wait()  # raises BrokenBarrierError unless all 8 are inside together

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(write) for _ in range(8)]:
            future.result(timeout=10)


def test_the_metrics_show_how_many_uploads_wait_for_a_slot() -> None:
    slots, metrics = StoreWriteSlots(1, wait_s=30), UploadMetrics()
    metrics.watch_store_slots(slots)
    assert b"witness_store_writes_waiting 0.0" in metrics.exposition()

    def write() -> None:
        with slots.held():
            pass

    with ThreadPoolExecutor(1) as pool:
        with slots.held():
            waiter = pool.submit(write)
            wait_until(lambda: slots.waiting == 1)
            assert b"witness_store_writes_waiting 1.0" in metrics.exposition()
        waiter.result(timeout=10)
    assert b"witness_store_writes_waiting 0.0" in metrics.exposition()


def test_a_store_needs_at_least_one_slot() -> None:
    with pytest.raises(ValueError, match="at least one write slot"):
        StoreWriteSlots(0)


# ---- the service against the real S3 server ----------------------------------------------------------------


class CountingPoolManager(urllib3.PoolManager):
    """urllib3's pool manager, counting the PUTs of originals in flight (and the most seen at once)."""

    def __init__(self) -> None:
        super().__init__(maxsize=16, retries=False)
        self.in_flight = self.most = self.sent = 0
        self._lock = threading.Lock()

    def urlopen(  # type: ignore[override]  # the same signature as urllib3's own PoolManager.urlopen
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        counted = method == "PUT" and "/originals/" in url
        if counted:
            with self._lock:
                self.in_flight += 1
                self.sent += 1
                self.most = max(self.most, self.in_flight)
        try:
            response = super().urlopen(method, url, redirect=redirect, **kw)
            if counted:
                response.data  # noqa: B018 - the write is over once its answer has been read
            return response
        finally:
            if counted:
                with self._lock:
                    self.in_flight -= 1


def service_with(s3_settings: S3Settings, sessions: sessionmaker[Session], slots: StoreWriteSlots,
                 http: urllib3.PoolManager) -> IngestService:
    client = PrehashedMinio(s3_settings.endpoint, access_key=s3_settings.access_key,
                            secret_key=s3_settings.secret_key.get_secret_value(), secure=False, http_client=http)
    return IngestService(client=client, buckets=s3_settings.buckets, sessions=sessions, max_pixels=10**8,
                         api_version="test", limits=AbuseLimits(), store_slots=slots)


@pytest.mark.integration
def test_concurrent_uploads_write_their_originals_two_at_a_time_and_all_are_stored(
    s3_settings: S3Settings, s3_client: Minio, sessions: sessionmaker[Session], event_id: str, shared_data: Path,
    tmp_path: Path,
) -> None:
    http = CountingPoolManager()
    service = service_with(s3_settings, sessions, StoreWriteSlots(2), http)
    photo = (shared_data / PHOTO).read_bytes()
    photos = [with_nonce(photo, f"slots {tmp_path.name} {index}") for index in range(8)]

    def accept(data: bytes) -> str:
        return service.accept_photo(event_id=event_id, submission_token=None, body=body_of(data)).sha256

    with ThreadPoolExecutor(8) as pool:
        stored = list(pool.map(accept, photos))
    assert http.sent == len(photos), "every original's PUT went through the counted pool"
    assert 1 <= http.most <= 2, f"{http.most} originals were written at once"
    with sessions() as session:
        for data, sha256 in zip(photos, stored, strict=True):
            assert session.scalars(select(Upload.id).where(Upload.sha256 == sha256)).first(), sha256
            assert sha256 == body_of(data).sha256


@pytest.mark.integration
def test_an_upload_that_finds_no_slot_in_time_is_refused_as_retryable_and_nothing_of_it_is_stored(
    s3_settings: S3Settings, s3_client: Minio, sessions: sessionmaker[Session], event_id: str, shared_data: Path,
    tmp_path: Path,
) -> None:
    slots = StoreWriteSlots(1, wait_s=0.1)
    service = service_with(s3_settings, sessions, slots, urllib3.PoolManager(maxsize=4, retries=False))
    body = body_of(with_nonce((shared_data / PHOTO).read_bytes(), f"busy {tmp_path.name}"))
    with slots.held(), pytest.raises(StorageUnavailable, match="the evidence store is busy"):
        service.accept_photo(event_id=event_id, submission_token=None, body=body)
    with sessions() as session:
        assert session.scalars(select(Upload.id).where(Upload.sha256 == body.sha256)).first() is None
    assert not list(s3_client.list_objects(s3_settings.buckets.evidence, prefix=f"originals/{body.sha256[:2]}/"
                                           f"{body.sha256[2:4]}/{body.sha256}"))
    receipt = service.accept_photo(event_id=event_id, submission_token=None, body=body)  # the witness retries
    assert receipt.sha256 == body.sha256 and not receipt.duplicate


# ---- the API over HTTP -------------------------------------------------------------------------------------


@pytest.fixture()
def api_with_one_slot(s3_settings: S3Settings, tmp_path: Path) -> Iterator[tuple[str, str, StoreWriteSlots]]:
    settings = api_settings(s3_settings, tmp_path / "api", store_write_slots=1, store_write_wait_s=0.2)
    event_id = create_test_event(settings)
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="slots-api", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout_s=60)
        assert server.started, "the API did not start"
        slots = app.state.ingest_service.store_slots
        assert isinstance(slots, StoreWriteSlots) and slots.count == 1
        yield f"http://{settings.host}:{settings.port}", event_id, slots
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.mark.integration
def test_the_api_answers_503_with_retry_after_while_the_store_has_no_free_slot(
    api_with_one_slot: tuple[str, str, StoreWriteSlots], shared_data: Path, tmp_path: Path
) -> None:
    base_url, event_id, slots = api_with_one_slot
    photo = with_nonce((shared_data / PHOTO).read_bytes(), f"http {tmp_path.name}")
    url, headers = f"{base_url}/v1/events/{event_id}/photos", {"Content-Type": "image/jpeg"}
    with slots.held():
        busy = httpx.post(url, content=photo, headers=headers, timeout=30)
    assert busy.status_code == 503, busy.text
    assert busy.json()["code"] == "storage_unavailable" and busy.headers["Retry-After"] == "5"
    stored = httpx.post(url, content=photo, headers=headers, timeout=30)
    assert stored.status_code == 201, stored.text
    assert "witness_store_writes_waiting 0.0" in httpx.get(f"{base_url}/metrics", timeout=30).text
