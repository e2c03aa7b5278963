"""SIGKILL the API process in the middle of a tus upload, restart it on the same state folder, and finish the upload.

The API runs as its own process (`witness serve`), exactly as deployed; the test SIGKILLs it, so nothing in it gets
to clean up. "Mid-request" is read from the server's own spool, never from a timer: the client announces the whole
rest of the photo in `Content-Length`, sends part of it and keeps the connection open, and the kill comes once the
spool file on disk has grown past the acknowledged offset. "During finalisation" is read the same way: every byte
is in the spool (or the original is already in the evidence bucket) while the client still has no answer.

After the restart the upload must be either stored with a receipt or resumable from an offset the server really
holds; a tus client (tuspy) resumes from HEAD's offset, and the receipt, the stored object (re-hashed from S3) and
its single version must all agree with the photo. An upload the server reports complete (HEAD offset = length)
without a receipt would be acknowledged-and-lost: a client stops there.
"""

from __future__ import annotations

import hashlib
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio import Minio

from infra.storage.config import S3Settings
from ingest_api.services.resumable_store import ResumableStore
from ingest_api.settings import ApiSettings
from tests.ingest_api.conftest import api_settings, create_test_event, open_submission
from tests.ingest_api.tus_helpers import CHUNK, head, open_patch, status, uploader
from tests.reliability.api_process import api_process, assert_stored_once, original_stored, sigkill
from tests.reliability.workload import with_nonce

pytestmark = pytest.mark.integration
PHOTO = "exif/android_nexus4_stale_gps.jpg"  # 2.8 MB, the largest real photo in shared/data
FINALISATION_ATTEMPTS = 4  # each attempt a distinct file (a JPEG comment added), so none is a duplicate


def answered(connection: socket.socket) -> bool:
    """Whether the server has started to answer (or closed) the request on `connection`."""
    return bool(select.select([connection], [], [], 0)[0])


def answer_after_kill(connection: socket.socket) -> bytes:
    """What the killed server had sent back: b"" when the connection just died."""
    try:
        return connection.recv(4096)
    except ConnectionResetError:
        return b""
    finally:
        connection.close()


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def spooled_bytes(store: ResumableStore, upload_id: str) -> int:
    try:
        return store.data_path(upload_id).stat().st_size
    except FileNotFoundError:  # finished: the bytes were handed to the object store and dropped
        return -1


@pytest.fixture()
def api_settings_for_kill(s3_settings: S3Settings, tmp_path: Path) -> tuple[ApiSettings, str]:
    settings = api_settings(s3_settings, tmp_path / "state")
    return settings, create_test_event(settings)


def test_a_kill_mid_patch_resumes_from_what_the_server_durably_holds(
    api_settings_for_kill: tuple[ApiSettings, str], s3_client: Minio, shared_data: Path, tmp_path: Path
) -> None:
    settings, event_id = api_settings_for_kill
    data = (shared_data / PHOTO).read_bytes()
    store = ResumableStore(settings.resumable_dir)
    log = tmp_path / "api.log"
    with api_process(settings, event_id, log) as first:
        token = open_submission(first.api)["submission_token"]
        upload = uploader(first.api, data, token)
        upload.upload(stop_at=2 * CHUNK)  # two chunks acknowledged before the kill
        acknowledged, url = upload.offset, str(upload.url)
        upload_id = url.rsplit("/", 1)[1]
        sent = (len(data) - acknowledged) // 2
        connection = open_patch(url, data, acknowledged, sent)
        wait_for(lambda: spooled_bytes(store, upload_id) > acknowledged, "the PATCH body to reach the spool")
        assert not answered(connection), "the request must still be in flight at the kill"
        spooled_at_kill = spooled_bytes(store, upload_id)
        sigkill(first)
    assert not answer_after_kill(connection).startswith(b"HTTP/1.1 2"), "nothing was acknowledged"
    kept = store.get(upload_id)
    with api_process(settings, event_id, log) as second:
        offset = int(head(url).headers["Upload-Offset"])
        assert offset == kept.offset, "HEAD reports exactly the offset recorded durably"
        assert acknowledged <= offset <= acknowledged + sent, "never more than was received"
        resumed = uploader(second.api, data, token, url=url)
        assert resumed.offset == offset  # tuspy asked the restarted server where to continue
        resumed.upload()
        document = status(url)
    assert document["state"] == "stored", document
    assert_stored_once(s3_client, settings.s3.buckets.evidence, data, document["receipt"])
    print(f"\nkill mid-PATCH: acknowledged {acknowledged}, sent {acknowledged + sent} of {len(data)}, "
          f"spooled at kill {spooled_at_kill}, HEAD after restart {offset}")


def every_byte_spooled(store: ResumableStore, upload_id: str, client: Minio, bucket: str, data: bytes) -> bool:
    return spooled_bytes(store, upload_id) == len(data)


def original_in_the_bucket(store: ResumableStore, upload_id: str, client: Minio, bucket: str, data: bytes) -> bool:
    return original_stored(client, bucket, hashlib.sha256(data).hexdigest())


Moment = Callable[[ResumableStore, str, Minio, str, bytes], bool]
FINALISATION_MOMENTS: dict[str, Moment] = {
    "every byte spooled": every_byte_spooled,
    "original in the evidence bucket": original_in_the_bucket,
}


@dataclass(frozen=True)
class KilledUpload:
    url: str
    token: str
    reply: bytes  # what the killed API had answered to the last PATCH
    stored_at_kill: bool  # the original was already in the evidence bucket


def kill_during_finalisation(settings: ApiSettings, event_id: str, data: bytes, moment: Moment, client: Minio,
                             log: Path) -> KilledUpload | None:
    """Upload all but the last chunk, send the rest in one PATCH, and SIGKILL the API once `moment` is seen while
    that PATCH is unanswered. None when the API answered first (the window was missed; the upload is complete)."""
    store, bucket = ResumableStore(settings.resumable_dir), settings.s3.buckets.evidence
    with api_process(settings, event_id, log) as running:
        token = open_submission(running.api)["submission_token"]
        upload = uploader(running.api, data, token)
        upload.upload(stop_at=len(data) - CHUNK)
        url = str(upload.url)
        upload_id = url.rsplit("/", 1)[1]
        connection = open_patch(url, data, upload.offset, len(data) - upload.offset)  # every byte goes out
        wait_for(lambda: answered(connection) or moment(store, upload_id, client, bucket, data), "the moment")
        hit = not answered(connection)
        if hit:
            sigkill(running)
    reply = answer_after_kill(connection)
    if not hit:
        assert reply.startswith(b"HTTP/1.1 204"), reply[:200]
        return None
    return KilledUpload(url, token, reply, original_stored(client, bucket, hashlib.sha256(data).hexdigest()))


@pytest.mark.parametrize("moment", sorted(FINALISATION_MOMENTS))
def test_a_kill_during_finalisation_never_acknowledges_a_lost_photo(
    api_settings_for_kill: tuple[ApiSettings, str], s3_client: Minio, shared_data: Path, tmp_path: Path,
    moment: str,
) -> None:
    settings, event_id = api_settings_for_kill
    log = tmp_path / "api.log"
    photo = (shared_data / PHOTO).read_bytes()
    for attempt in range(1, FINALISATION_ATTEMPTS + 1):
        data = with_nonce(photo, f"kill-{moment}-{attempt}-{tmp_path.name}")
        killed = kill_during_finalisation(settings, event_id, data, FINALISATION_MOMENTS[moment], s3_client, log)
        if killed is not None:
            break
    else:
        pytest.fail(f"in {FINALISATION_ATTEMPTS} uploads the API always answered before '{moment}' was seen")
    assert not killed.reply.startswith(b"HTTP/1.1 2"), "the killed request was never acknowledged"
    with api_process(settings, event_id, log) as second:
        offset = int(head(killed.url).headers["Upload-Offset"])
        document = status(killed.url)
        if document["state"] != "stored":
            assert offset < len(data), f"HEAD says complete ({offset}) but nothing holds a receipt: a client stops"
            resumed = uploader(second.api, data, killed.token, url=killed.url)
            assert resumed.offset == offset
            resumed.upload()
            document = status(killed.url)
    assert document["state"] == "stored", document
    manifests = assert_stored_once(s3_client, settings.s3.buckets.evidence, data, document["receipt"])
    print(f"\nkill at '{moment}' on attempt {attempt}: HEAD after restart {offset} of {len(data)}, "
          f"original already stored at the kill: {killed.stored_at_kill}; receipt duplicate flag "
          f"{document['receipt']['duplicate']}; manifest versions {manifests}")
