"""Abuse limits: request rates per client IP and per submission token, and transfers in flight server-wide.

Rates use the `limits` library's moving window in process memory; several API replicas would each count
their own share (a shared Redis storage is the upgrade path, same API).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ingest_api.services.sniff import RejectedUpload
from ingest_api.settings import AbuseLimits


class AbuseGuard:
    def __init__(self, limits: AbuseLimits) -> None:
        self.limits = limits
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._per_ip = parse(limits.per_ip)
        self._per_token = parse(limits.per_token)
        self._transfers = 0

    def hit_ip(self, ip: str) -> None:
        if not self._limiter.hit(self._per_ip, "ip", ip):
            raise RejectedUpload(
                "rate_limited", f"too many requests from this address (limit {self.limits.per_ip}); retry later", 429
            )

    def hit_token(self, token_sha256: str) -> None:
        if not self._limiter.hit(self._per_token, "token", token_sha256):
            raise RejectedUpload(
                "rate_limited", f"too many requests for this submission (limit {self.limits.per_token})", 429
            )

    @contextmanager
    def transfer(self) -> Iterator[None]:
        """Count one request body being received; refuse beyond the server-wide limit (the client retries)."""
        if self._transfers >= self.limits.max_concurrent_transfers:
            raise RejectedUpload(
                "too_busy",
                f"the server is receiving {self._transfers} uploads at once; retry shortly, nothing was lost",
                503,
            )
        self._transfers += 1
        try:
            yield
        finally:
            self._transfers -= 1


def check_submission_budget(limits: AbuseLimits, *, files: int, size: int) -> None:
    """Refuse a submission that would hold more than its budget of `files` or `size` bytes (413)."""
    if files > limits.max_files_per_submission:
        raise RejectedUpload(
            "too_many_files", f"a submission holds at most {limits.max_files_per_submission} files", 413
        )
    if size > limits.max_bytes_per_submission:
        raise RejectedUpload(
            "submission_too_large", f"a submission holds at most {limits.max_bytes_per_submission} bytes", 413
        )
