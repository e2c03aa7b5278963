"""The ingest workload shared by the reliability tests and `bench/ingest.py`: distinct real-size photos,
clients that retry what the API calls retryable, and an API configured for load.

Photos are seeded noise JPEGs of 3-6 MB (incompressible, like phone photos); a few bases are encoded once and
every upload gets its own JPEG comment segment, so each file is distinct without paying for a new encode.
"""

from __future__ import annotations

import hashlib
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import urllib3
from PIL import Image

from infra.storage.config import S3Settings
from ingest_api.settings import ApiSettings

MB = 1024 * 1024
RETRYABLE = {429, 503}


# ---- the workload -------------------------------------------------------------------------------------------


def noise_jpeg(seed: int, *, min_bytes: int = 3 * MB, max_bytes: int = 6 * MB) -> bytes:
    """A JPEG of seeded noise between `min_bytes` and `max_bytes` (real phone-photo size, incompressible)."""
    rng = np.random.default_rng(seed)
    target = int(rng.integers(min_bytes, max_bytes))
    # Noise at quality 95 costs ~1.45 bytes per pixel; grow once if the first guess falls short.
    pixels = int(target / 1.45)
    for _ in range(4):
        width = int((pixels * 4 / 3) ** 0.5)
        height = pixels // width
        out = BytesIO()
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(out, "JPEG", quality=95)
        if min_bytes <= out.tell() <= max_bytes:
            return out.getvalue()
        pixels = int(pixels * target / out.tell())
    raise RuntimeError(f"could not make a JPEG between {min_bytes} and {max_bytes} bytes")


def with_nonce(jpeg: bytes, nonce: str) -> bytes:
    """The same picture made a distinct file: a JPEG comment segment (COM) right after the SOI marker."""
    text = nonce.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(text) + 2) + text + jpeg[2:]


@dataclass(frozen=True)
class PhotoSet:
    """`count` distinct real-size JPEGs built on demand from a few seeded noise bases (generation is slow)."""

    bases: tuple[bytes, ...]
    count: int
    tag: str

    def __len__(self) -> int:
        return self.count

    def photo(self, index: int) -> bytes:
        return with_nonce(self.bases[index % len(self.bases)], f"witness-bench {self.tag} photo {index}")

    def retagged(self, tag: str) -> PhotoSet:
        return PhotoSet(self.bases, self.count, tag)

    @property
    def total_bytes(self) -> int:
        return sum(len(self.photo(i)) for i in range(self.count))


def synthetic_photos(count: int, *, seed: int = 9, bases: int = 6, tag: str = "run") -> PhotoSet:
    with ThreadPoolExecutor(max_workers=2) as pool:  # Pillow's encoder releases the GIL
        made = tuple(pool.map(noise_jpeg, range(seed * 1000, seed * 1000 + bases)))
    return PhotoSet(made, count, tag)


# ---- uploading with retries --------------------------------------------------------------------------------


@dataclass
class UploadOutcome:
    index: int
    sha256: str
    status: int | None = None
    receipt: dict[str, Any] | None = None
    latency_s: float = 0.0  # from the first byte sent (first attempt) to the acknowledgement
    retryable_failures: list[str] = field(default_factory=list)


def upload_until_acknowledged(
    client: urllib3.HTTPConnectionPool, path: str, data: bytes, *, index: int, deadline: float,
    backoff_s: float = 0.25,
) -> UploadOutcome:
    """POST the photo until it is acknowledged (201) or refused for good; 429/503/connection errors are retried.

    Retry-After is honoured but capped at `backoff_s` x 4 so bounded runs stay bounded.
    """
    outcome = UploadOutcome(index=index, sha256=hashlib.sha256(data).hexdigest())
    started = time.perf_counter()
    while True:
        try:
            response = client.request("POST", path, body=data, headers={"Content-Type": "image/jpeg"})
        except urllib3.exceptions.HTTPError as error:
            outcome.retryable_failures.append(f"{type(error).__name__}")
            wait = backoff_s
        else:
            outcome.status = response.status
            if response.status not in RETRYABLE:
                if response.status == 201:
                    outcome.receipt = response.json()
                outcome.latency_s = time.perf_counter() - started
                return outcome
            outcome.retryable_failures.append(f"{response.status} {response.json().get('code')}")
            wait = min(float(response.headers.get("Retry-After", backoff_s)), backoff_s * 4)
        if time.monotonic() + wait > deadline:
            outcome.latency_s = time.perf_counter() - started
            return outcome
        time.sleep(wait)


def witness_connection(base_url: str) -> urllib3.HTTPConnectionPool:
    """One keep-alive connection, no transport retries (the caller retries), the HTTP stack of minio's client.

    The same client library on both sides of the benchmark: httpx, used here before, spent about 6 times the CPU of
    urllib3 to send the same bodies, on the cores it shares with the API and the S3 server."""
    parsed = urllib3.util.parse_url(base_url)
    if parsed.host is None:
        raise ValueError(f"no host in {base_url!r}")
    return urllib3.HTTPConnectionPool(
        parsed.host, parsed.port, maxsize=1, block=True, retries=False, timeout=urllib3.Timeout(connect=30, read=120)
    )


def upload_all(
    base_url: str, event_id: str, photos: PhotoSet, *, clients: int, deadline_s: float,
    on_result: Callable[[UploadOutcome], None] | None = None,
) -> list[UploadOutcome]:
    """`clients` threads, each with its own HTTP connection, share the photos; results in photo order."""
    path = f"/v1/events/{event_id}/photos"
    deadline = time.monotonic() + deadline_s
    local = threading.local()
    opened: list[urllib3.HTTPConnectionPool] = []

    def one(index: int) -> UploadOutcome:
        if not hasattr(local, "client"):
            local.client = witness_connection(base_url)
            opened.append(local.client)
        outcome = upload_until_acknowledged(local.client, path, photos.photo(index), index=index, deadline=deadline)
        if on_result is not None:
            on_result(outcome)
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            return list(pool.map(one, range(len(photos))))
    finally:
        for client in opened:
            client.close()


# ---- the stack under test ----------------------------------------------------------------------------------


def bench_api_settings(s3: S3Settings, state_dir: Path, port: int) -> ApiSettings:
    """API settings for load: abuse limits raised so the bench measures throughput, not the rate limiter."""
    limits = {"per_ip": "100000/minute", "per_token": "100000/minute", "max_concurrent_transfers": 1024}
    return ApiSettings.from_mapping(
        {"state_dir": state_dir, "s3": s3, "port": port, "max_upload_bytes": 16 * MB, "limits": limits}
    )


def create_event(settings: ApiSettings) -> str:
    from ingest_api.db import repository
    from ingest_api.db.migrate import upgrade
    from ingest_api.db.session import build_engine, session_factory

    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            now = datetime.now(UTC)
            event = repository.create_event(
                session=session, name="Ingest benchmark", lat=48.8566, lon=2.3522, radius_m=500,
                starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=6),
            )
            return str(event.id)
    finally:
        engine.dispose()
