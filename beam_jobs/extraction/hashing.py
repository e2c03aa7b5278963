"""Content hashes: SHA-256 for identity and the evidence chain, pHash for near-duplicate grouping."""

from __future__ import annotations

import hashlib

import imagehash
from PIL import Image

PHASH_HEX_LENGTH = 16  # imagehash.phash with hash_size=8: 64 bits


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of the exact bytes received."""
    return hashlib.sha256(data).hexdigest()


def phash_hex(image: Image.Image) -> str:
    """64-bit perceptual hash as 16 hex characters; resized or re-encoded copies stay close."""
    return str(imagehash.phash(image))


def hamming_distance(first: str, second: str) -> int:
    """Number of differing bits between two `phash_hex` values (0 = same picture, 64 = opposite)."""
    for value in (first, second):
        if len(value) != PHASH_HEX_LENGTH:
            raise ValueError(f"phash must be {PHASH_HEX_LENGTH} hex characters, got {value!r}")
    try:
        return (int(first, 16) ^ int(second, 16)).bit_count()
    except ValueError as exc:
        raise ValueError(f"phash is not hexadecimal: {first!r} / {second!r}") from exc
