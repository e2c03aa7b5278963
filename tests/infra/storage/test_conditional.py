"""Compare-and-swap of a JSON object on the real SeaweedFS server: the server refuses a stale `If-Match`, and
`update_json` re-reads and re-applies its change when another writer got in between."""

from __future__ import annotations

import io
import json

import pytest
from minio import Minio

from infra.storage import conditional
from infra.storage.conditional import (
    PROBE_PREFIX,
    Change,
    Document,
    RetryPolicy,
    UpdateConflict,
    encode,
    put_if_unchanged,
    read_snapshot,
    server_honours_if_match,
    update_json,
)
from infra.storage.integrity import Verification

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
FAST = RetryPolicy(attempts=4, base_delay_s=0.001, max_delay_s=0.01)


@pytest.fixture
def bucket(versioned_bucket: str) -> str:
    return versioned_bucket


def _put(client: Minio, bucket: str, key: str, document: Document) -> None:
    body = encode(document)
    client.put_object(bucket, key, io.BytesIO(body), len(body))


def _appending(item: str) -> Change:
    def change(document: Document | None) -> Document:
        items = (document or {"items": []})["items"]
        return {"items": items if item in items else [*items, item]}
    return change


def test_the_test_server_refuses_a_stale_if_match_and_the_probe_leaves_nothing(s3_client: Minio, bucket: str) -> None:
    assert server_honours_if_match(s3_client, bucket)
    assert not list(s3_client.list_objects(bucket, prefix=PROBE_PREFIX, include_version=True))


def test_a_write_with_the_etag_read_is_stored_and_one_with_a_stale_etag_is_not(s3_client: Minio, bucket: str) -> None:
    _put(s3_client, bucket, "doc.json", {"n": 1})
    first = read_snapshot(s3_client, bucket, "doc.json")
    assert put_if_unchanged(s3_client, bucket, "doc.json", encode({"n": 2}), etag=first.etag,
                            verification=Verification.READ_BACK)
    assert not put_if_unchanged(s3_client, bucket, "doc.json", encode({"n": 3}), etag=first.etag,
                                verification=Verification.READ_BACK)
    assert not put_if_unchanged(s3_client, bucket, "doc.json", encode({"n": 4}), etag=None,
                                verification=Verification.READ_BACK)
    assert read_snapshot(s3_client, bucket, "doc.json").document == {"n": 2}


def test_an_update_creates_a_missing_object(s3_client: Minio, bucket: str) -> None:
    assert update_json(s3_client, bucket, "new.json", _appending("a")) == {"items": ["a"]}
    assert read_snapshot(s3_client, bucket, "new.json").document == {"items": ["a"]}


def test_the_server_is_probed_once_per_client_and_bucket(
    s3_client: Minio, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[str] = []

    def counting_probe(client: Minio, probed: str) -> bool:
        probes.append(probed)
        return server_honours_if_match(client, probed)

    monkeypatch.setattr(conditional, "server_honours_if_match", counting_probe)
    for item in "abc":
        update_json(s3_client, bucket, "counted.json", _appending(item))
    assert probes == [bucket]
    assert read_snapshot(s3_client, bucket, "counted.json").document == {"items": ["a", "b", "c"]}


def test_a_write_that_lost_to_another_writer_is_retried_on_what_that_writer_stored(
    s3_client: Minio, bucket: str
) -> None:
    _put(s3_client, bucket, "doc.json", {"items": ["base"]})
    seen: list[Document | None] = []

    def change(document: Document | None) -> Document:
        seen.append(document)
        if len(seen) == 1:  # another writer stores its update between our read and our write: our PUT gets a 412
            _put(s3_client, bucket, "doc.json", {"items": ["base", "rival"]})
        return {"items": [*(document or {"items": []})["items"], "ours"]}

    assert update_json(s3_client, bucket, "doc.json", change, policy=FAST) == {"items": ["base", "rival", "ours"]}
    assert seen == [{"items": ["base"]}, {"items": ["base", "rival"]}]
    stored = json.loads(s3_client.get_object(bucket, "doc.json").read())
    assert stored == {"items": ["base", "rival", "ours"]}


def test_an_update_that_always_loses_gives_up_with_a_clear_error_and_stores_nothing(
    s3_client: Minio, bucket: str
) -> None:
    _put(s3_client, bucket, "doc.json", {"rival": 0})
    calls = 0

    def change(document: Document | None) -> Document:
        nonlocal calls
        calls += 1
        _put(s3_client, bucket, "doc.json", {"rival": calls})
        return {"ours": True}

    with pytest.raises(UpdateConflict, match="4 conditional writes"):
        update_json(s3_client, bucket, "doc.json", change, policy=FAST)
    assert calls == FAST.attempts
    assert read_snapshot(s3_client, bucket, "doc.json").document == {"rival": FAST.attempts}


def test_a_change_that_raises_ends_the_update_with_nothing_written(s3_client: Minio, bucket: str) -> None:
    _put(s3_client, bucket, "doc.json", {"n": 1})

    def refuse(document: Document | None) -> Document:
        raise LookupError("what the change needs is gone")

    with pytest.raises(LookupError):
        update_json(s3_client, bucket, "doc.json", refuse, policy=FAST)
    versions = [v for v in s3_client.list_objects(bucket, prefix="doc.json", include_version=True)]
    assert len(versions) == 1


def test_a_plain_minio_client_cannot_write_conditionally() -> None:
    plain = Minio("127.0.0.1:9", access_key="access", secret_key="secret", secure=False)  # refused before any request
    with pytest.raises(TypeError, match="PrehashedMinio"):
        put_if_unchanged(plain, "bucket", "doc.json", b"{}", etag=None, verification=Verification.READ_BACK)
