"""One extraction launch at a time per catalog: a lease object in the catalog bucket.

    extract/lease.json   {"holder": "<run id>", "host": "...", "pid": 4242, "expires_at": "2026-12-07T12:40:00+00:00"}

Without it, two launches started together both list the same pending manifests and extract them twice (both
commits land; readers keep one row per id, so nothing is wrong, only done twice at full model cost). A launch
takes the lease before it lists what is pending, renews it from a background thread while the pipeline runs, and
releases it after its commit. Every change is a compare-and-swap on the object's ETag (`update_json`), so of two
launches racing for a free lease exactly one gets it; the other is refused with `LeaseHeld`, naming the holder.

A launch that dies keeps the lease until `expires_at` (the TTL, `WITNESS_EXTRACT_LEASE_TTL_S`), after which the
next launch takes it over. Expiry compares wall clocks of different hosts: keep them NTP-synchronised, with the
TTL far above their skew. A holder that could not renew in time (an S3 outage longer than the TTL) may find its
lease taken; it still commits its verified run (commits are compare-and-swaps, and a repeat is harmless) and
says so.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

from minio import Minio

from infra.storage.conditional import Document, update_json

log = logging.getLogger(__name__)

LEASE_KEY = "extract/lease.json"
RENEWALS_PER_TTL = 4  # renew at a quarter of the TTL: three renewals can fail before the lease can lapse


class LeaseHeld(RuntimeError):
    """Another extraction launch holds the catalog's lease and it has not expired."""


@dataclass(frozen=True)
class LeaseHolder:
    run_id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls, run_id: str) -> LeaseHolder:
        return cls(run_id, socket.gethostname(), os.getpid())

    def document(self, expires_at: datetime) -> Document:
        return {"holder": self.run_id, "host": self.host, "pid": self.pid, "expires_at": expires_at.isoformat()}


def expires_at(document: Document) -> datetime | None:
    value = document.get("expires_at")
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def is_held_by_other(document: Document | None, holder: LeaseHolder, now: datetime) -> bool:
    if document is None or document.get("holder") in (None, holder.run_id):
        return False
    until = expires_at(document)
    return until is not None and until > now


def claimed(document: Document | None, holder: LeaseHolder, now: datetime, ttl: timedelta) -> Document:
    """The lease as `holder` takes or renews it until `now + ttl`; raises LeaseHeld if another holder's has not
    expired (so a renewal also finds out that the lease was taken over)."""
    if is_held_by_other(document, holder, now):
        assert document is not None
        raise LeaseHeld(
            f"another extraction (run {document.get('holder')} on {document.get('host')}, pid {document.get('pid')})"
            f" holds the lease until {document.get('expires_at')}; run again after it finishes"
        )
    return holder.document(now + ttl)


def released(document: Document | None, holder: LeaseHolder, now: datetime) -> Document:
    """The lease given up by `holder`; another holder's lease is left as it is."""
    if document is not None and document.get("holder") != holder.run_id:
        return document
    return {"holder": None, "released_by": holder.run_id, "released_at": now.isoformat()}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ExtractionLease:
    """Context manager: take the lease on enter (LeaseHeld if taken), renew it in a daemon thread, release it on
    exit. `lost` turns True if a renewal found another holder."""

    def __init__(
        self, client: Minio, bucket: str, holder: LeaseHolder, *, ttl_s: float,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client, self._bucket, self.holder = client, bucket, holder
        self._ttl = timedelta(seconds=ttl_s)
        self._clock = clock
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost = False

    def _claim(self) -> None:
        update_json(self._client, self._bucket, LEASE_KEY,
                    lambda document: claimed(document, self.holder, self._clock(), self._ttl))

    def _renew_until_stopped(self) -> None:
        interval = self._ttl.total_seconds() / RENEWALS_PER_TTL
        while not self._stop.wait(interval):
            try:
                self._claim()
            except LeaseHeld as error:
                self.lost = True
                log.warning("extraction run %s lost its lease: %s", self.holder.run_id, error)
                return
            except Exception as error:  # an S3 hiccup must not end the job; the next try may pass
                log.warning("could not renew the extraction lease of run %s: %s", self.holder.run_id, error)

    def __enter__(self) -> ExtractionLease:
        self._claim()
        self._renewer = threading.Thread(target=self._renew_until_stopped, name="extract-lease", daemon=True)
        self._renewer.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            update_json(self._client, self._bucket, LEASE_KEY,
                        lambda document: released(document, self.holder, self._clock()))
        except Exception as release_error:  # it expires by itself; keep the job's outcome
            log.warning("could not release the extraction lease of run %s (it expires by itself): %s",
                        self.holder.run_id, release_error)
