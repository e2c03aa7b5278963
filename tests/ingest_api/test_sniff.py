"""Sniffing reads only the header: damaged side segments do not make a photo unreadable."""

from __future__ import annotations

import io
import struct

from PIL import Image

from ingest_api.services.sniff import sniff_image


def _jpeg_with_segment(marker: bytes, payload: bytes) -> bytes:
    plain = io.BytesIO()
    Image.new("RGB", (16, 12)).save(plain, "JPEG")
    data = plain.getvalue()
    return data[:2] + marker + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def test_a_malformed_mpo_segment_still_sniffs_as_jpeg_even_when_warnings_are_errors() -> None:
    # pytest runs with filterwarnings=error: a Pillow UserWarning escaping sniff_image would fail this test,
    # as it made the API answer 500 under the reliability fuzz.
    data = _jpeg_with_segment(b"\xff\xe2", b"MPF\x00II*\x00\x08\x00\x00\x00\x05\x00")
    sniffed = sniff_image(io.BytesIO(data), max_pixels=10**6)
    assert (sniffed.media_type, sniffed.width, sniffed.height) == ("image/jpeg", 16, 12)
