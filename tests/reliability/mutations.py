"""Hypothesis strategies that mutate real photo bytes the way hostile or broken uploads do.

Shared by the fuzz tests (`tests/beam_jobs/extraction/test_fuzz_*.py`, `tests/reliability/`):

* byte flips, biased towards the metadata at the head of the file where the parsers live;
* truncations, deleted and duplicated ranges;
* EXIF segments spliced into a JPEG: taken from another real photo, or a TIFF structure built by
  Hypothesis (arbitrary tags, types, counts and offsets, nested Exif/GPS IFD pointers);
* huge (or zero) declared dimensions: JPEG SOF, PNG IHDR (CRC fixed so Pillow believes it),
  HEIF `ispe`, WebP VP8X canvas.

Every strategy is deterministic for a given Hypothesis seed; nothing touches the network or disk.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from hypothesis import strategies as st

HEAD_BYTES = 64 * 1024  # where EXIF, ICC and the container boxes live in every seed photo

# Small real photos (all formats) that decode in milliseconds: the CI fuzz seeds.
SMALL_SEEDS = (
    "exif/orientation_landscape_6.jpg",
    "exif/commons_canon_40d_nogps.jpg",
    "exif/commons_kodak_cx7530_south_lat.jpg",
    "exif/canon_600d_yosemite.jpg",
    "exif/drone_hasselblad_l1d20c.jpg",
    "exif/gaia_nikon_p6000_DSCN0010.jpg",
    "exif/samsung_gt-i9000_null_island.jpg",
    "exif/exif_offset_out_of_bounds.jpg",
    "exif/nikon_d3100_typeerror.jpg",
    "exif/iphone_xr_tiny_2852b.jpg",
    "exif/png_exif_chunk_gps.png",
    "exif/iphone_x_exif_in_webp.webp",
)
# Real HEIC/HEIF phone photos (12-16 MP, ~0.5 s to decode): fuzzed with fewer examples in CI.
HEIF_SEEDS = ("exif/iphone_11_pro_IMG_2927_original_nogps.HEIC", "exif/android_nokia_8.3_5g_hdr.heif")
# Seeds whose EXIF segments are spliced into others (GPS, odd GPS, maker notes, lying offsets).
EXIF_DONORS = (
    "exif/sony_hx5v_builtin_gps.jpg",
    "exif/canon_30d_gps_zero_denominators.jpg",
    "exif/iphone_6_bad_gpsdate.jpg",
    "exif/samsung_sm-g930f_zero_length_string.jpg",
    "exif/gt5_gps_ifd_no_coords.jpg",
    "exif/gpsdate_all_zero.jpg",
    "exif/exif_offset_out_of_bounds.jpg",
    "exif/nikon_d70s_oserror.jpg",
    "exif/olympus_corrupted.jpg",
)

# TIFF tags the EXIF readers look at, plus IFD pointers so nested IFDs get built and broken.
_INTERESTING_TAGS = (
    0x010F, 0x0110, 0x0112, 0x0131, 0x0132, 0x8769, 0x8825, 0xA005, 0x927C,
    0x9003, 0x9004, 0x9010, 0x9011, 0x9290, 0x9291, 0xA434,
    0x0000, 0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x001D,
)
_U32 = st.integers(0, 2**32 - 1)


class Mutant(bytes):
    """Mutated bytes whose repr stays short (Hypothesis prints failing inputs; photos are megabytes)."""

    def __repr__(self) -> str:
        return f"Mutant(len={len(self)}, sha256={hashlib.sha256(self).hexdigest()[:16]}, head={self[:24].hex()})"


def load(shared_data: Path, names: Sequence[str]) -> list[bytes]:
    return [(shared_data / name).read_bytes() for name in names]


def exif_segment(jpeg: bytes) -> tuple[int, int] | None:
    """(start, end) of the first APP1 `Exif` segment in a JPEG, marker included; None if absent."""
    offset = 2
    while offset + 4 <= len(jpeg) and jpeg[offset] == 0xFF:
        marker = jpeg[offset + 1]
        (length,) = struct.unpack(">H", jpeg[offset + 2 : offset + 4])
        end = offset + 2 + length
        if marker == 0xE1 and jpeg[offset + 4 : offset + 10] == b"Exif\x00\x00":
            return offset, end
        if marker == 0xDA:  # start of scan: no metadata beyond this point
            return None
        offset = end
    return None


def exif_payload(jpeg: bytes) -> bytes:
    """The TIFF bytes of a JPEG's EXIF segment (after `Exif\\0\\0`), or b'' without one."""
    found = exif_segment(jpeg)
    return jpeg[found[0] + 10 : found[1]] if found else b""


def splice_exif(jpeg: bytes, tiff: bytes, *, declared_extra: int = 0) -> bytes:
    """Replace (or insert after SOI) the APP1 Exif segment; `declared_extra` makes the length field lie."""
    body = b"Exif\x00\x00" + tiff[: 65535 - 8]
    length = max(0, min(0xFFFF, len(body) + 2 + declared_extra))
    segment = b"\xff\xe1" + struct.pack(">H", length) + body
    found = exif_segment(jpeg)
    if found is None:
        return jpeg[:2] + segment + jpeg[2:]
    return jpeg[: found[0]] + segment + jpeg[found[1] :]


@st.composite
def tiff_structures(draw: st.DrawFn) -> bytes:
    """A TIFF/EXIF block with arbitrary IFD entries: wrong types, huge counts, offsets anywhere."""
    little = draw(st.booleans())
    order = "<" if little else ">"
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_INTERESTING_TAGS) | st.integers(0, 0xFFFF),
                st.integers(0, 14),  # TIFF types 1-13 are defined; 0 and 14 are not
                st.sampled_from((0, 1, 2, 3, 4, 8, 20, 0xFFFF, 2**31, 2**32 - 1)) | _U32,
                _U32,
            ),
            max_size=12,
        )
    )
    blob = draw(st.binary(max_size=256))
    ifd_offset = draw(st.sampled_from((8, 0, 4, 2**32 - 1)) | st.integers(0, 400))
    head = (b"II*\x00" if little else b"MM\x00*") + struct.pack(order + "I", ifd_offset)
    ifd = struct.pack(order + "H", len(entries))
    for tag, kind, count, value in entries:
        if tag in (0x8769, 0x8825, 0xA005) and draw(st.booleans()):
            value = 8  # point a sub-IFD back at IFD0: a loop the readers must not follow forever
        ifd += struct.pack(order + "HHII", tag, kind, count, value)
    ifd += struct.pack(order + "I", draw(st.sampled_from((0, 8)) | _U32))  # next-IFD pointer
    return head + ifd + blob


@st.composite
def byte_flips(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        window = min(len(out), HEAD_BYTES) if draw(st.integers(0, 3)) else len(out)
        position = draw(st.integers(0, window - 1))
        out[position] = draw(st.sampled_from((0x00, 0xFF, out[position] ^ 0x80)) | st.integers(0, 255))
    return bytes(out)


@st.composite
def truncations(draw: st.DrawFn, data: bytes) -> bytes:
    return data[: draw(st.integers(0, len(data) - 1))]


@st.composite
def range_edits(draw: st.DrawFn, data: bytes) -> bytes:
    """Delete or duplicate a range, or insert random bytes, inside the head of the file."""
    window = min(len(data), HEAD_BYTES)
    start = draw(st.integers(0, window - 1))
    end = draw(st.integers(start, min(window, start + 4096)))
    action = draw(st.sampled_from(("delete", "duplicate", "insert")))
    if action == "delete":
        return data[:start] + data[end:]
    if action == "duplicate":
        return data[:end] + data[start:end] + data[end:]
    return data[:start] + draw(st.binary(min_size=1, max_size=64)) + data[start:]


_DIMENSION = st.sampled_from((0, 1, 0x7FFF, 0xFFFF, 0x10000, 50_000, 2**31 - 1, 2**32 - 1)) | _U32


def _set_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    offset = 2
    while offset + 9 <= len(data) and data[offset] == 0xFF:
        marker = data[offset + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return data[: offset + 5] + struct.pack(">HH", height & 0xFFFF, width & 0xFFFF) + data[offset + 9 :]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        offset += 2 + length
    return data


def _set_png_size(data: bytes, width: int, height: int) -> bytes:
    if data[12:16] != b"IHDR":
        return data
    body = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:8] + data[8:12] + body + struct.pack(">I", zlib.crc32(body)) + data[33:]


def _set_heif_size(data: bytes, width: int, height: int) -> bytes:
    at = data.find(b"ispe")
    if at < 0 or at + 16 > len(data):
        return data
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def _set_webp_size(data: bytes, width: int, height: int) -> bytes:
    if data[12:16] != b"VP8X":
        return data
    size = struct.pack("<I", (width - 1) & 0xFFFFFF)[:3] + struct.pack("<I", (height - 1) & 0xFFFFFF)[:3]
    return data[:24] + size + data[30:]


_RESIZERS: dict[bytes, Callable[[bytes, int, int], bytes]] = {
    b"\xff\xd8": _set_jpeg_size,
    b"\x89P": _set_png_size,
    b"RI": _set_webp_size,
}


def set_declared_size(data: bytes, width: int, height: int) -> bytes:
    """The same file with its header claiming `width` x `height` (truncated to the field's width)."""
    if data[4:8] == b"ftyp":
        return _set_heif_size(data, width, height)
    resize = _RESIZERS.get(data[:2])
    return resize(data, width, height) if resize else data


@st.composite
def huge_dimensions(draw: st.DrawFn, data: bytes) -> bytes:
    return set_declared_size(data, draw(_DIMENSION), draw(_DIMENSION))


@st.composite
def spliced_exif(draw: st.DrawFn, data: bytes, donors: Sequence[bytes]) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        return draw(byte_flips(data))
    donor_tiffs = [payload for payload in map(exif_payload, donors) if payload]
    sources = [tiff_structures()]
    if donor_tiffs:
        sources.append(st.sampled_from(donor_tiffs).flatmap(lambda tiff: byte_flips(tiff) | st.just(tiff)))
    tiff = draw(st.one_of(sources))
    lie = draw(st.sampled_from((0, 0, -4, 7, 40_000)))
    return splice_exif(data, tiff, declared_extra=lie)


def mutated(seeds: Sequence[bytes], donors: Sequence[bytes] = ()) -> st.SearchStrategy[bytes]:
    """One real seed with one or two mutations applied (the second on top of the first)."""

    def mutate_once(data: bytes) -> st.SearchStrategy[bytes]:
        options = [byte_flips(data), truncations(data), range_edits(data), huge_dimensions(data)]
        if data.startswith(b"\xff\xd8"):
            options.append(spliced_exif(data, donors))
        return st.one_of(options)

    once = st.sampled_from(list(seeds)).flatmap(mutate_once)
    twice = once.flatmap(lambda data: mutate_once(data) if len(data) > 1 else st.just(data))
    return (once | twice).map(Mutant)
