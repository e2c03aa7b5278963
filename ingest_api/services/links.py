"""The public witness upload link of an event and its QR code (SVG or PNG, via `segno`), for appeals."""

from __future__ import annotations

import io
from typing import Literal

import segno

QrFormat = Literal["svg", "png"]
MEDIA_TYPES: dict[QrFormat, str] = {"svg": "image/svg+xml", "png": "image/png"}


def upload_link(public_url: str, event_id: str) -> str:
    return f"{public_url.rstrip('/')}/e/{event_id}"


def qr_code(link: str, kind: QrFormat, *, scale: int = 8) -> bytes:
    """Error correction "Q" survives a poster photographed at an angle or partly covered."""
    buffer = io.BytesIO()
    segno.make_qr(link, error="q").save(buffer, kind=kind, scale=scale, border=4)
    return buffer.getvalue()
