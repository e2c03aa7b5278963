"""The disk spool behind resumable uploads: one `<id>.bin` (bytes so far) and one `<id>.json` (state) per upload.

The JSON offset is the acknowledged offset and is written (temp file, fsync, rename) only after the bytes are
fsynced, so an API restart resumes exactly where the witness was told it stood; stray bytes past it are cut off.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

_ID_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class UnknownUpload(Exception):
    """No such resumable upload (never created, terminated, or removed after expiry)."""


@dataclass(frozen=True)
class UploadState:
    id: str
    length: int
    offset: int
    created_at: str
    expires_at: str
    metadata: dict[str, str] = field(default_factory=dict)
    token_sha256: str | None = None
    receipt: dict[str, Any] | None = None  # set once the photo is stored, verified and recorded
    error: dict[str, str] | None = None  # set when the completed file was refused

    @property
    def expires(self) -> datetime:
        return datetime.fromisoformat(self.expires_at)

    @property
    def finished(self) -> bool:
        return self.receipt is not None or self.error is not None

    def expired(self, now: datetime) -> bool:
        return not self.finished and self.expires <= now


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class ResumableStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _json(self, upload_id: str) -> Path:
        if len(upload_id) != 32 or not set(upload_id) <= _ID_ALPHABET:
            raise UnknownUpload(upload_id)
        return self.root / f"{upload_id}.json"

    def data_path(self, upload_id: str) -> Path:
        return self._json(upload_id).with_suffix(".bin")

    def create(
        self, *, length: int, expires_at: datetime, metadata: dict[str, str], token_sha256: str | None
    ) -> UploadState:
        upload_id = secrets.token_urlsafe(24)  # 32 characters, unguessable: the upload URL is the capability
        state = UploadState(
            id=upload_id,
            length=length,
            offset=0,
            created_at=datetime.now(UTC).isoformat(),
            expires_at=expires_at.isoformat(),
            metadata=metadata,
            token_sha256=token_sha256,
        )
        self.data_path(upload_id).touch()
        self.save(state)
        return state

    def save(self, state: UploadState) -> None:
        target = self._json(state.id)
        temporary = target.with_suffix(".json.tmp")
        with temporary.open("w") as handle:
            json.dump(asdict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(self.root)

    def get(self, upload_id: str) -> UploadState:
        try:
            document = json.loads(self._json(upload_id).read_text())
        except FileNotFoundError as error:
            raise UnknownUpload(upload_id) from error
        return UploadState(**document)

    def open_at_offset(self, state: UploadState) -> IO[bytes]:
        """Open the data file for appending at the acknowledged offset (dropping any unacknowledged tail)."""
        handle = self.data_path(state.id).open("r+b")
        handle.truncate(state.offset)
        handle.seek(state.offset)
        return handle

    @staticmethod
    def sync(handle: IO[bytes]) -> None:
        """Make the bytes written through `handle` durable (before any offset that covers them is recorded)."""
        handle.flush()
        os.fsync(handle.fileno())

    def acknowledge(self, state: UploadState, handle: IO[bytes], new_offset: int) -> UploadState:
        self.sync(handle)
        updated = replace(state, offset=new_offset)
        self.save(updated)
        return updated

    def finish(self, state: UploadState, **outcome: Any) -> UploadState:
        """Record the outcome (receipt or error) and drop the bytes: the object store now holds them, or no one."""
        updated = replace(state, **outcome)
        self.save(updated)
        self.data_path(state.id).unlink(missing_ok=True)
        return updated

    def remove(self, upload_id: str) -> None:
        self.data_path(upload_id).unlink(missing_ok=True)
        self._json(upload_id).unlink(missing_ok=True)

    def all(self) -> list[UploadState]:
        states = []
        for path in sorted(self.root.glob("*.json")):
            try:
                states.append(self.get(path.stem))
            except UnknownUpload:
                continue  # removed meanwhile
        return states

    def remove_expired(self, now: datetime, *, keep_finished_s: float) -> list[str]:
        """Remove unfinished uploads past expiry, and finished records `keep_finished_s` after expiry."""
        removed = []
        for state in self.all():
            finished_gone = state.finished and (now - state.expires).total_seconds() >= keep_finished_s
            if state.expired(now) or finished_gone:
                self.remove(state.id)
                removed.append(state.id)
        return removed
