"""S3 connection and bucket settings, shared by every deployable's settings class.

A plain pydantic model (not BaseSettings): each deployable nests it in its own settings so one object is read once
by the entry point and the libraries below receive plain values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr

LOCAL_ACCESS_KEY = "witness-local"
LOCAL_SECRET_KEY = "witness-local-secret-change-me"


class BucketNames(BaseModel):
    evidence: str = "evidence"
    derived: str = "derived"
    catalog: str = "catalog"
    audit: str = "audit"  # sealed audit-log segments; created with object lock, each seal carries its retention


class S3Settings(BaseModel):
    endpoint: str = Field(default="127.0.0.1:9000", description="host:port of the S3 API")
    secure: bool = False
    region: str = "us-east-1"
    access_key: str = LOCAL_ACCESS_KEY
    secret_key: SecretStr = SecretStr(LOCAL_SECRET_KEY)
    buckets: BucketNames = BucketNames()
    # Originals are kept under object lock; GOVERNANCE lets an admin lift it for an erasure order,
    # COMPLIANCE does not even allow that. Production chooses.
    evidence_retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    evidence_retention_days: int = Field(default=30, ge=1)
    max_connections: int = Field(default=64, ge=1, le=1024, description="HTTP connections kept open to S3")
    presign_expiry_s: int = Field(default=900, ge=1, le=7 * 24 * 3600)

    def uses_default_secret(self) -> bool:
        return self.secret_key.get_secret_value() == LOCAL_SECRET_KEY
