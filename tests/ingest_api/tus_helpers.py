"""Helpers for driving the tus endpoints with the real `tuspy` client and with raw requests."""

from __future__ import annotations

import base64
import hashlib
import io
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from tusclient.client import TusClient
from tusclient.uploader import Uploader

from tests.ingest_api.conftest import RunningApi

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 64 * 1024


class Sha256Uploader(Uploader):
    """tuspy sends sha1 checksums by default; the issue asks for sha256."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def url_of(upload: Uploader) -> str:
    """The upload's URL on the server, which tus-py sets once the upload was created (POST)."""
    assert upload.url is not None, "the upload was never created"
    return str(upload.url)


def metadata(api: RunningApi, token: str, **extra: str) -> dict[str, str]:
    return {"event_id": api.event_id, "submission_token": token, **extra}


def uploader(api: RunningApi, data: bytes, token: str, *, url: str | None = None, **options: Any) -> Sha256Uploader:
    client = TusClient(f"{api.base_url}/v1/uploads")
    return Sha256Uploader(
        file_stream=io.BytesIO(data),
        client=client,
        url=url,
        chunk_size=CHUNK,
        metadata=metadata(api, token, filename="photo.jpg"),
        upload_checksum=True,
        **options,
    )


def encode_metadata(values: dict[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


def head(url: str) -> httpx.Response:
    return httpx.head(url, headers=TUS, timeout=30)


def status(url: str) -> dict[str, Any]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def open_patch(url: str, data: bytes, offset: int, send: int) -> socket.socket:
    """A PATCH announcing all of `data[offset:]` whose first `send` bytes are sent; the connection stays open."""
    parts = urlsplit(url)
    body = data[offset:]
    request = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    connection = socket.create_connection((parts.hostname, parts.port), timeout=30)
    connection.sendall(request + body[:send])
    return connection


def cut_patch(url: str, data: bytes, offset: int, send: int) -> None:
    """Start a PATCH announcing all of `data` from `offset`, send only `send` bytes, then drop the connection."""
    with open_patch(url, data, offset, send) as connection:
        connection.shutdown(socket.SHUT_RDWR)
