"""Signed receipts: a canonical JSON document and its HMAC-SHA256, so a witness can later prove what we held.

Pure functions over dicts; the key comes from settings (`WITNESS_RECEIPT_KEY`), never from here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

ALGORITHM = "HMAC-SHA256"


def canonical(document: dict[str, Any]) -> bytes:
    body = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(document: dict[str, Any], *, key: bytes, key_id: str) -> dict[str, Any]:
    value = hmac.new(key, canonical(document), hashlib.sha256).hexdigest()
    return {**document, "signature": {"alg": ALGORITHM, "key_id": key_id, "value": value}}


def verify(document: dict[str, Any], *, key: bytes) -> bool:
    signature = document.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != ALGORITHM:
        return False
    expected = hmac.new(key, canonical(document), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, str(signature.get("value", "")))


def render(document: dict[str, Any]) -> bytes:
    """A receipt's bytes as the API sends them (compact JSON in document order, UTF-8: Starlette's JSONResponse
    rendering); the court bundle stores these, so they compare equal to what the witness downloaded."""
    return json.dumps(document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
