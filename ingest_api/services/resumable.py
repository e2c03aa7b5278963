"""Resumable witness uploads (tus 1.0 semantics) over the disk spool, handing complete files to `IngestService`.

Nothing is acknowledged before it is durable: a chunk's offset only after its bytes are fsynced, and the final
offset only after the photo is stored in S3, verified and recorded. If storage fails at that point the final
chunk is un-acknowledged (the client re-sends it), so a witness never sees "done" for a photo we do not hold.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta

from ingest_api.db import repository
from ingest_api.services.ingest import IngestService, StorageUnavailable
from ingest_api.services.limits import AbuseGuard, check_submission_budget
from ingest_api.services.metrics import UploadMetrics
from ingest_api.services.resumable_store import ResumableStore, UnknownUpload, UploadState
from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.spool import SpooledBody
from ingest_api.services.tus_protocol import CAPTION_MAX, FILENAME_MAX, Checksum, clean_text

LOCK_WAIT_S = 10.0
READ_BLOCK = 1024 * 1024


@dataclass
class _Slot:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)


async def _until_cancelled(chunks: AsyncIterator[bytes], cancel: asyncio.Event) -> AsyncIterator[bytes]:
    """Yield body chunks until the body ends or a newer request for the same upload asks this one to let go
    (a phone that lost its network leaves a half-open connection behind; the retry must not wait for it)."""
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        while True:
            step = asyncio.ensure_future(anext(chunks))
            done, _ = await asyncio.wait({step, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if step not in done:
                step.cancel()
                return
            try:
                chunk = step.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        cancelled.cancel()


class ResumableUploads:
    def __init__(
        self,
        *,
        store: ResumableStore,
        ingest: IngestService,
        guard: AbuseGuard,
        metrics: UploadMetrics,
        max_upload_bytes: int,
        expiry: timedelta,
    ) -> None:
        self.store, self.ingest, self.guard, self.metrics = store, ingest, guard, metrics
        self.max_upload_bytes, self.expiry = max_upload_bytes, expiry
        self._slots: dict[str, _Slot] = {}

    def create(self, *, length: int, metadata: dict[str, str]) -> UploadState:
        """Open an upload after checking the event, the submission token and the submission's limits."""
        if length > self.max_upload_bytes:
            limit = self.max_upload_bytes
            raise RejectedUpload("too_large", f"Upload-Length {length} exceeds the limit of {limit} bytes", 413)
        event_id, token = metadata.get("event_id"), metadata.get("submission_token")
        if not event_id or not token:
            raise RejectedUpload(
                "missing_metadata", "Upload-Metadata must carry event_id and submission_token (open a submission)", 400
            )
        token_sha256 = repository.hash_token(token)
        self.guard.hit_token(token_sha256)
        with self.ingest.sessions() as session:
            event = repository.get_event(session=session, event_id=event_id)
            if event is None:
                raise RejectedUpload("unknown_event", f"no event with id {event_id!r}", 404)
            if not event.accepts_uploads:
                raise RejectedUpload("event_closed", f"event {event_id!r} no longer accepts uploads", 410)
            submission = repository.submission_for_token_hash(session=session, token_sha256=token_sha256)
            if submission is None or submission.event_id != event_id:
                raise RejectedUpload("bad_token", "the submission token is not valid for this event", 401)
            if submission.withdrawn_at is not None:
                raise RejectedUpload("withdrawn", "this submission was withdrawn by the witness", 410)
            files, size = repository.submission_totals(session=session, submission_id=submission.id)
        self._check_submission_limits(token_sha256, files, size, length)
        kept = {
            "event_id": event_id,
            "caption": clean_text(metadata.get("caption"), limit=CAPTION_MAX),
            "filename": clean_text(metadata.get("filename") or metadata.get("name"), limit=FILENAME_MAX),
        }
        return self.store.create(
            length=length,
            expires_at=datetime.now(UTC) + self.expiry,
            metadata={key: value for key, value in kept.items() if value},
            token_sha256=token_sha256,
        )

    def _check_submission_limits(self, token_sha256: str, files: int, size: int, length: int) -> None:
        limits = self.guard.limits
        open_uploads = [s for s in self.store.all() if s.token_sha256 == token_sha256 and not s.finished]
        if len(open_uploads) >= limits.max_open_uploads_per_submission:
            raise RejectedUpload(
                "too_many_open_uploads",
                f"{len(open_uploads)} uploads of this submission are unfinished (limit "
                f"{limits.max_open_uploads_per_submission}); finish or cancel some first",
                429,
            )
        check_submission_budget(limits, files=files + len(open_uploads) + 1,
                                size=size + sum(s.length for s in open_uploads) + length)

    def status(self, upload_id: str, now: datetime | None = None) -> UploadState:
        state = self.store.get(upload_id)
        if state.expired(now or datetime.now(UTC)):
            self.store.remove(upload_id)
            raise RejectedUpload("upload_expired", "this upload expired and was removed; start it again", 410)
        return state

    def terminate(self, upload_id: str) -> None:
        self.store.get(upload_id)
        self.store.remove(upload_id)

    def sweep(self, now: datetime | None = None) -> list[str]:
        # Finished records are kept one more expiry period so a client can still fetch its receipt.
        return self.store.remove_expired(now or datetime.now(UTC), keep_finished_s=self.expiry.total_seconds())

    async def receive(
        self,
        upload_id: str,
        *,
        offset: int,
        chunks: AsyncIterator[bytes],
        declared: int | None,
        checksum: Checksum | None,
    ) -> UploadState:
        slot = self._slots.setdefault(upload_id, _Slot())
        if slot.lock.locked():
            slot.cancel.set()
        try:
            await asyncio.wait_for(slot.lock.acquire(), timeout=LOCK_WAIT_S)
        except TimeoutError as error:
            raise RejectedUpload("upload_busy", "another request is still writing this upload; retry", 423) from error
        slot.cancel = cancel = asyncio.Event()
        try:
            with self.guard.transfer():
                return await self._receive_locked(upload_id, offset, chunks, declared, checksum, cancel)
        finally:
            slot.lock.release()

    async def _receive_locked(
        self,
        upload_id: str,
        offset: int,
        chunks: AsyncIterator[bytes],
        declared: int | None,
        checksum: Checksum | None,
        cancel: asyncio.Event,
    ) -> UploadState:
        state = self.status(upload_id)
        if state.token_sha256:
            self.guard.hit_token(state.token_sha256)
        if state.finished:
            raise RejectedUpload("upload_finished", "this upload is already complete", 409)
        if offset != state.offset:
            raise RejectedUpload("offset_mismatch", f"Upload-Offset {offset} but the server holds {state.offset}", 409)
        if declared is not None and offset + declared > state.length:
            raise RejectedUpload("beyond_length", f"the chunk would pass Upload-Length {state.length}", 413)
        hasher = checksum.new_hasher() if checksum else None
        received = 0
        handle = self.store.open_at_offset(state)
        try:
            async for chunk in _until_cancelled(chunks, cancel):
                if offset + received + len(chunk) > state.length:
                    raise RejectedUpload("beyond_length", f"the body passes Upload-Length {state.length}", 413)
                handle.write(chunk)
                received += len(chunk)
                if hasher:
                    hasher.update(chunk)
            self.metrics.bytes_received.inc(received)
            if checksum and hasher:
                if declared is not None and received != declared:
                    return state  # cut short: a partial chunk cannot be verified, so none of it is acknowledged
                if hasher.digest() != checksum.digest:
                    self.metrics.failures.labels("checksum_mismatch").inc()
                    raise RejectedUpload("checksum_mismatch", f"the chunk's {checksum.algorithm} does not match", 460)
            if offset + received < state.length:
                state = self.store.acknowledge(state, handle, offset + received)
            else:
                # The final offset is recorded only with the receipt (`store.finish`). Were it recorded first, an
                # API killed while storing would answer HEAD with Upload-Offset = Upload-Length after a restart,
                # and a tus client would stop there without a receipt, the photo never stored.
                self.store.sync(handle)
                state = replace(state, offset=state.length)
        finally:
            handle.close()
        if state.offset == state.length:
            state = await self._complete(state)
        return state

    async def _complete(self, state: UploadState) -> UploadState:
        """Store the spooled file; until the receipt is recorded the spool still says the last chunk is missing,
        so after a storage failure (or a crash) the client re-sends it and this runs again (storing is idempotent)."""
        started = time.perf_counter()
        try:
            receipt = await asyncio.to_thread(self._ingest, state)
        except StorageUnavailable:
            self.metrics.failures.labels("storage_unavailable").inc()
            raise
        except RejectedUpload as error:
            self.metrics.failures.labels(error.code).inc()
            self.store.finish(state, error={"code": error.code, "message": error.message})
            raise
        self.metrics.ingest_seconds.observe(time.perf_counter() - started)
        self.metrics.files_accepted.inc()
        return self.store.finish(state, receipt=receipt)

    def _ingest(self, state: UploadState) -> dict[str, object]:
        digest = hashlib.sha256()
        with self.store.data_path(state.id).open("rb") as handle:
            while block := handle.read(READ_BLOCK):
                digest.update(block)
            handle.seek(0)
            receipt = self.ingest.accept_photo(
                event_id=state.metadata["event_id"],
                submission_token=None,
                submission_token_sha256=state.token_sha256,
                body=SpooledBody(handle, state.length, digest.hexdigest()),
                caption=state.metadata.get("caption"),
                filename=state.metadata.get("filename"),
            )
        document = asdict(receipt)
        document["received_at"] = receipt.received_at.isoformat()
        document.pop("submission_token", None)
        return document


__all__ = ["ResumableUploads", "UnknownUpload"]
