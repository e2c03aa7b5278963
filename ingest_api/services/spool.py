"""Receive a streamed request body into a spool while hashing and counting it."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ingest_api.services.sniff import RejectedUpload


@dataclass
class SpooledBody:
    file: IO[bytes]
    size: int
    sha256: str

    def close(self) -> None:
        self.file.close()


async def spool_body(
    chunks: AsyncIterator[bytes], *, max_bytes: int, memory_bytes: int, spool_dir: Path | None = None
) -> SpooledBody:
    """Copy the body into memory or a temp file, refusing it as soon as it exceeds `max_bytes`.

    The hash is taken here, on the bytes as received, so the storage layer can later prove (by the server's own
    checksum or by reading back) that what it stored is exactly what the witness sent.

    Bodies up to `memory_bytes` are kept as the list of received chunks and joined once at the end: a growing
    in-memory file re-copies itself as it grows, on the event loop, for every upload. The joined `bytes` sit in a
    BytesIO that shares them, so the S3 client's whole-object read takes them without another copy.
    """
    digest = hashlib.sha256()
    size = 0
    held: list[bytes] = []
    spill: IO[bytes] | None = None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise RejectedUpload("too_large", f"the upload exceeds the limit of {max_bytes} bytes", status=413)
            digest.update(chunk)
            if spill is None and size > memory_bytes:
                spill = tempfile.TemporaryFile(dir=str(spool_dir) if spool_dir else None)  # noqa: SIM115 - returned
                spill.writelines(held)
                held.clear()
            if spill is None:
                held.append(chunk)
            else:
                spill.write(chunk)
    except BaseException:
        if spill is not None:
            spill.close()
        raise
    file: IO[bytes] = io.BytesIO(b"".join(held)) if spill is None else spill
    file.seek(0)
    return SpooledBody(file, size, digest.hexdigest())
