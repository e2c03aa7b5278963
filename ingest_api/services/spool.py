"""Receive a streamed request body into a spool file while hashing and counting it."""

from __future__ import annotations

import hashlib
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

    The hash is taken here, on the bytes as received, so the storage layer can later prove that what it stored
    is exactly what the witness sent.
    """
    spool = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - ownership passes to SpooledBody
        max_size=memory_bytes, dir=str(spool_dir) if spool_dir else None
    )
    digest = hashlib.sha256()
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise RejectedUpload("too_large", f"the upload exceeds the limit of {max_bytes} bytes", status=413)
            digest.update(chunk)
            spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return SpooledBody(spool, size, digest.hexdigest())
