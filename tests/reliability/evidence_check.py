"""Proof that acknowledged uploads are in the object store intact: re-hash every stored byte, count versions."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from minio import Minio

from infra.storage.evidence import manifest_key, original_key
from tests.reliability.workload import UploadOutcome


def assert_acknowledged_are_stored(client: Minio, bucket: str, event_id: str, acked: Sequence[UploadOutcome]) -> int:
    """Every acknowledged photo is stored once (one key, one version), hashes to its receipt, has its manifest.

    Returns the number of bytes re-hashed.
    """
    checked = 0
    keys = {original_key(outcome.sha256) for outcome in acked}
    versions = Counter(
        item.object_name
        for item in client.list_objects(bucket, prefix="originals/", recursive=True, include_version=True)
        if item.object_name in keys
    )
    duplicated = {key: count for key, count in versions.items() if count != 1}
    assert not duplicated, f"originals stored more than once: {duplicated}"
    for outcome in acked:
        assert outcome.receipt is not None and outcome.receipt["sha256"] == outcome.sha256
        response = client.get_object(bucket, original_key(outcome.sha256))
        try:
            body = response.read()
        finally:
            response.close()
            response.release_conn()
        assert hashlib.sha256(body).hexdigest() == outcome.sha256, f"photo {outcome.index} is damaged in S3"
        assert len(body) == outcome.receipt["size"]
        checked += len(body)
        manifest = manifest_key(event_id=event_id, submission_id=outcome.receipt["submission_id"],
                                sha256=outcome.sha256)
        client.stat_object(bucket, manifest)  # raises NoSuchKey if the manifest is missing
    missing = keys - set(versions)
    assert not missing, f"acknowledged but not listed in S3: {sorted(missing)[:3]}"
    return checked
