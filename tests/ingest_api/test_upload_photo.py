"""Witness uploads through real HTTP, stored in the real S3 server: good images in, bad ones refused clearly."""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from minio import Minio

from infra.storage.evidence import SHA256_META, original_key, read_json
from infra.storage.integrity import server_checksum
from infra.storage.objects import read_bytes
from tests.ingest_api.conftest import MAX_UPLOAD_BYTES, RunningApi

pytestmark = pytest.mark.integration


def _post(api: RunningApi, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return httpx.post(f"{api.base_url}/v1/events/{api.event_id}/photos", content=body, headers=headers, timeout=60)


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG that claims width x height RGB pixels; its IDAT holds a few kB of zlib'd zeros."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    rows = zlib.compress(b"\0" * (3 * width + 1) * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("exif/gaia_nikon_p6000_DSCN0010.jpg", "image/jpeg"),
        ("exif/png_exif_chunk_gps.png", "image/png"),
        ("exif/iphone_11_pro_max_IMG_5195.HEIC", "image/heic"),
        ("exif/iphone_x_exif_in_webp.webp", "image/webp"),
    ],
)
def test_real_photos_are_stored_and_verified(
    api: RunningApi,
    s3_client: Minio,
    shared_data: Path,
    manifest: dict[str, dict[str, str]],
    name: str,
    media_type: str,
) -> None:
    data = (shared_data / name).read_bytes()
    response = _post(api, data, **{"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["sha256"] == hashlib.sha256(data).hexdigest() == manifest[name]["sha256"]
    assert receipt["size"] == len(data) and receipt["media_type"] == media_type
    assert receipt["width"] > 0 and receipt["height"] > 0 and receipt["submission_token"]
    bucket = api.settings.s3.buckets.evidence
    stat = s3_client.stat_object(bucket, original_key(receipt["sha256"]))
    assert stat.metadata is not None and stat.metadata[SHA256_META] == receipt["sha256"]
    stored = s3_client.get_object(bucket, original_key(receipt["sha256"]))
    assert hashlib.sha256(stored.read()).hexdigest() == receipt["sha256"]
    stored.close()
    manifests = list(s3_client.list_objects(bucket, prefix=f"manifests/{api.event_id}/{receipt['submission_id']}/"))
    assert len(manifests) == 1
    document = read_json(s3_client, bucket, str(manifests[0].object_name))
    assert document["sha256"] == receipt["sha256"] and document["submission_id"] == receipt["submission_id"]
    # The API sent its SHA-256 as x-amz-checksum-sha256 with both writes, so the server checked the bytes against
    # it (a wrong one is refused: tests/infra/storage/test_integrity.py) and recorded it; it records none unasked.
    original_checksum, size, _ = server_checksum(s3_client, bucket, original_key(receipt["sha256"]), None)
    assert original_checksum == receipt["sha256"] and size == len(data)
    manifest_body = read_bytes(s3_client, bucket, str(manifests[0].object_name))
    manifest_checksum = server_checksum(s3_client, bucket, str(manifests[0].object_name), None)[0]
    assert manifest_checksum == hashlib.sha256(manifest_body).hexdigest()


def test_duplicate_upload_is_one_object_in_one_submission(api: RunningApi, s3_client: Minio, shared_data: Path) -> None:
    data = (shared_data / "exif/gaia_nikon_p6000_DSCN0025.jpg").read_bytes()
    first = _post(api, data).json()
    second = _post(api, data, **{"X-Submission-Token": first["submission_token"]})
    assert second.status_code == 201
    assert second.json()["submission_id"] == first["submission_id"]
    assert second.json()["duplicate"] is True and "submission_token" not in second.json()
    assert second.json()["received_at"] == first["received_at"]
    key = original_key(first["sha256"])
    versions = list(s3_client.list_objects(api.settings.s3.buckets.evidence, prefix=key, include_version=True))
    assert len(versions) == 1


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"just some text pretending to be a photo\n" * 10, 415, "unsupported_type", "not a JPEG, PNG"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", 422, "unreadable_image", "truncated or corrupt"),
        (_png_bomb(30000, 30000), 413, "too_many_pixels", "pixels"),
        (b"", 400, "empty_body", "empty"),
    ],
    ids=["text-as-jpeg", "truncated-jpeg-header", "decompression-bomb", "empty"],
)
def test_bad_bodies_are_refused_with_specific_messages(
    api: RunningApi, body: bytes, status: int, code: str, words: str
) -> None:
    response = _post(api, body, **{"Content-Type": "image/jpeg"})
    assert response.status_code == status, response.text
    assert response.json()["code"] == code and words in response.json()["message"]


def test_oversize_body_is_refused_by_declared_length(api: RunningApi) -> None:
    response = _post(api, b"\xff\xd8\xff" + b"\0" * MAX_UPLOAD_BYTES)
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_oversize_body_is_refused_while_streaming_without_length(api: RunningApi) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"\xff\xd8\xff"
        for _ in range(MAX_UPLOAD_BYTES // (1024 * 1024) + 2):
            yield b"\0" * 1024 * 1024

    response = _post(api, chunks())
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_unknown_event_and_bad_token_are_refused(api: RunningApi, shared_data: Path) -> None:
    data = (shared_data / "exif/gaia_nikon_p6000_DSCN0042.jpg").read_bytes()
    unknown = httpx.post(f"{api.base_url}/v1/events/no-such-event/photos", content=data)
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_event"
    forged = _post(api, data, **{"X-Submission-Token": "forged-token"})
    assert forged.status_code == 401 and forged.json()["code"] == "bad_token"
