"""sha256_hex against the manifest, pHash near-duplicates on real consecutive frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from beam_jobs.extraction.decode import decode_image
from beam_jobs.extraction.hashing import hamming_distance, phash_hex, sha256_hex


def _phash(shared_data: Path, name: str) -> str:
    return phash_hex(decode_image((shared_data / name).read_bytes(), max_pixels=50_000_000).image)


def test_sha256_matches_manifest(
    shared_data: Path, manifest: dict[str, dict[str, str]], exif_file: str
) -> None:
    assert sha256_hex((shared_data / exif_file).read_bytes()) == manifest[exif_file]["sha256"]


def test_consecutive_frames_are_near_and_other_cars_are_far(shared_data: Path) -> None:
    first = _phash(shared_data, "vehicles/us_CWW2245_a.jpg")
    second = _phash(shared_data, "vehicles/us_CWW2245_b.jpg")  # near-duplicate frame per the manifest
    other = _phash(shared_data, "vehicles/us_RZN384_a.jpg")
    assert len(first) == 16 and int(first, 16) >= 0
    assert hamming_distance(first, second) <= 10
    assert hamming_distance(first, other) >= 20


def test_phash_survives_resizing(shared_data: Path) -> None:
    image = decode_image((shared_data / "exif/gaia_nikon_p6000_DSCN0010.jpg").read_bytes(),
                         max_pixels=50_000_000).image
    small = image.resize((image.width // 4, image.height // 4))
    assert hamming_distance(phash_hex(image), phash_hex(small)) <= 4


def test_hamming_distance_counts_bits() -> None:
    assert hamming_distance("0" * 16, "f" * 16) == 64
    assert hamming_distance("00000000000000a0", "0000000000000000") == 2


@pytest.mark.parametrize(("first", "second"), [("abc", "0" * 16), ("g" * 16, "0" * 16)])
def test_hamming_distance_refuses_non_hashes(first: str, second: str) -> None:
    with pytest.raises(ValueError, match="phash"):
        hamming_distance(first, second)
