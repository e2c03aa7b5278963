"""The request-body spool: bytes, size and SHA-256 exactly as received, in memory or spilled to disk."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator

import pytest

from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.spool import spool_body


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _spool(parts: list[bytes], *, max_bytes: int = 1 << 20, memory_bytes: int = 1000) -> tuple[bytes, int, str, bool]:
    body = asyncio.run(spool_body(_chunks(parts), max_bytes=max_bytes, memory_bytes=memory_bytes))
    try:
        return body.file.read(), body.size, body.sha256, isinstance(body.file, io.BytesIO)
    finally:
        body.close()


@pytest.mark.parametrize(("sizes", "in_memory"), [([300, 300, 400], True), ([300, 300, 401], False), ([5000], False)])
def test_body_is_kept_byte_for_byte_in_memory_or_on_disk(sizes: list[int], in_memory: bool) -> None:
    parts = [bytes([index]) * size for index, size in enumerate(sizes)]
    data, size, sha256, kept_in_memory = _spool(parts)
    assert data == b"".join(parts) and size == len(data) and sha256 == hashlib.sha256(data).hexdigest()
    assert kept_in_memory is in_memory


def test_body_over_the_limit_is_refused_while_streaming() -> None:
    with pytest.raises(RejectedUpload) as refused:
        _spool([b"x" * 600, b"x" * 600], max_bytes=1000)
    assert refused.value.status == 413 and refused.value.code == "too_large"
