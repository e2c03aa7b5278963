"""Prometheus metrics for witness uploads, on a registry owned by one app (tests build many apps)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from pydantic import SecretStr

from ingest_api.services.store_slots import StoreWriteSlots


def metrics_reader(token: SecretStr | None, authorization: str | None) -> bool:
    """Whether a request with this `Authorization` header may read the metrics (always, when no token is set)."""
    if token is None:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    # Constant-time comparison: the token is a secret compared with attacker-chosen input.
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected)


@dataclass
class UploadMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.bytes_received = Counter(
            "witness_upload_bytes_received", "Bytes of photo data received (all protocols)", registry=self.registry
        )
        self.files_accepted = Counter(
            "witness_upload_files_accepted", "Photos stored, verified and acknowledged", registry=self.registry
        )
        self.failures = Counter(
            "witness_upload_failures", "Refused or failed uploads by reason code", ["reason"], registry=self.registry
        )
        self.ingest_seconds = Histogram(
            "witness_upload_ingest_seconds",
            "Time from a complete file to its verified, recorded receipt",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )

    def watch_store_slots(self, slots: StoreWriteSlots) -> None:
        """Export how many uploads wait for a store write slot: a queue that stays long says the store (or
        `store_write_slots`) is the limit."""
        waiting = Gauge("witness_store_writes_waiting", "Uploads waiting for a slot to write their original",
                        registry=self.registry)
        waiting.set_function(lambda: slots.waiting)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
