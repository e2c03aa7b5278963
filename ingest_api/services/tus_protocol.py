"""Pure parsing and formatting for the tus 1.0 headers we accept (no HTTP, no disk): tested on their own."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from ingest_api.services.sniff import RejectedUpload

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUM_ALGORITHMS: dict[str, Callable[[], hashlib._Hash]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}
METADATA_KEYS = frozenset({"event_id", "submission_token", "caption", "filename", "filetype", "name", "type"})
MAX_METADATA_HEADER = 4096
CAPTION_MAX = 500
FILENAME_MAX = 200


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    def new_hasher(self) -> hashlib._Hash:
        return CHECKSUM_ALGORITHMS[self.algorithm]()


def parse_metadata(header: str | None) -> dict[str, str]:
    """`key base64value, key2 base64value2, flag` -> dict; unknown keys are ignored, bad encodings refused."""
    if not header:
        return {}
    if len(header) > MAX_METADATA_HEADER:
        raise RejectedUpload("bad_metadata", f"Upload-Metadata is longer than {MAX_METADATA_HEADER} bytes", 400)
    result: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key or key not in METADATA_KEYS:
            continue
        try:
            result[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            message = f"Upload-Metadata value of {key!r} is not base64 UTF-8"
            raise RejectedUpload("bad_metadata", message, 400) from error
    return result


def clean_text(value: str | None, *, limit: int) -> str | None:
    """Display-only text from a witness: control characters dropped, length capped. Never used as a key or path."""
    if value is None:
        return None
    cleaned = "".join(char for char in value if char.isprintable()).strip()
    return cleaned[:limit] or None


def parse_checksum(header: str | None) -> Checksum | None:
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise RejectedUpload(
            "bad_checksum_algorithm",
            f"Upload-Checksum algorithm {algorithm!r} is not supported; use one of {sorted(CHECKSUM_ALGORITHMS)}",
            400,
        )
    try:
        return Checksum(algorithm, base64.b64decode(encoded.strip(), validate=True))
    except binascii.Error as error:
        raise RejectedUpload("bad_checksum", "Upload-Checksum digest is not base64", 400) from error


def parse_non_negative(name: str, value: str | None) -> int:
    if value is None or not value.isdigit():
        raise RejectedUpload(f"bad_{name.lower().replace('-', '_')}", f"{name} must be a non-negative integer", 400)
    return int(value)


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)
