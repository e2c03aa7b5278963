"""Licence-plate text search and vehicle attribute filters over detection `attributes` JSON.

Plates are compared after `normalise_plate` (upper case, letters and digits only). OCR confuses
look-alike glyphs, so fuzzy matching maps both sides to a confusion-class canonical form
(0/O/D/Q, 1/I/L/7, 8/B, 5/S, 2/Z, 6/G) and scores with rapidfuzz `fuzz.ratio` (0-100) against a
cutoff; ties are broken by the ratio of the plain normalised texts, so a literal match ranks first.
Queries with `*` (any run of characters) or `?` (exactly one) are wildcard patterns, matched on the
canonical form too ("AB-12*" finds "AB12XYZ" and the misread "A812XYZ").

Attribute keys read (written by beam_jobs extraction): `class`, `colour` (or `color`),
`plate_text_normalised`, falling back to `plate_text`.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

_CONFUSIONS = {"0": "ODQ", "1": "IL7", "8": "B", "5": "S", "2": "Z", "6": "G"}
_CANONICAL = str.maketrans({ch: rep for rep, group in _CONFUSIONS.items() for ch in group})
_NOT_PLATE = re.compile(r"[^0-9A-Z]")
_NOT_PATTERN = re.compile(r"[^0-9A-Z*?]")

COLOUR_SYNONYMS = {"gray": "grey", "silver": "silver", "navy": "blue", "maroon": "red"}
CLASS_SYNONYMS = {"motorbike": "motorcycle", "lorry": "truck", "bike": "bicycle", "automobile": "car"}
KNOWN_COLOURS = frozenset({"black", "white", "grey", "silver", "red", "blue", "green", "yellow", "orange",
                           "brown", "beige", "purple", "pink", "gold"})
KNOWN_CLASSES = frozenset({"car", "truck", "bus", "van", "motorcycle", "bicycle"})


class PlateQueryError(ValueError):
    """An attributes value or a vehicle query cannot be interpreted."""


def normalise_plate(text: str) -> str:
    """Upper-case letters and digits only: " rk-878.ac " -> "RK878AC"."""
    return _NOT_PLATE.sub("", unicodedata.normalize("NFKC", text).upper())


def canonical_plate(text: str) -> str:
    """Normalised text with OCR look-alikes folded together: "RK87BAC" and "RK878AC" -> "RK8780AC"."""
    return normalise_plate(text).translate(_CANONICAL)


def _wildcard_pattern(query: str, *, canonical: bool) -> str:
    pattern = _NOT_PATTERN.sub("", unicodedata.normalize("NFKC", query).upper())
    return pattern.translate(_CANONICAL) if canonical else pattern


def glob_match(pattern: str, text: str) -> bool:
    """`*` = any run, `?` = one character; whole-string match in O(len(pattern) * len(text)).

    Not a regex: `.*` groups backtrack exponentially on queries like `*A*A*A...*B` (a 23-character query took
    17 s), and investigators' queries are untrusted input.
    """
    p = t = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(pattern) and pattern[p] in ("?", text[t]):
            p, t = p + 1, t + 1
        elif p < len(pattern) and pattern[p] == "*":
            star, resume, p = p, t, p + 1
        elif star >= 0:
            p, resume = star + 1, resume + 1
            t = resume
        else:
            return False
    return all(ch == "*" for ch in pattern[p:])


@dataclass(frozen=True)
class PlateMatches:
    """rows `(m,) int64` into the searched sequence, best first; scores `(m,) float64` in [0, 100]
    (confusion-folded ratio; equal scores are ordered by the literal ratio, then row)."""

    rows: NDArray[np.int64]
    scores: NDArray[np.float64]


def search_plates(query: str, plates: Sequence[str | None], *, cutoff: float = 80.0,
                  limit: int | None = None) -> PlateMatches:
    """Rank `plates` (None = no plate read) against `query`; wildcard if it holds `*` or `?`."""
    if not normalise_plate(query.replace("*", "").replace("?", "")) and not set(query) & {"*", "?"}:
        raise PlateQueryError(f"plate query {query!r} has no letters or digits")
    rows = np.array([i for i, p in enumerate(plates) if p], dtype=np.int64)
    norm = [normalise_plate(plates[i] or "") for i in rows]
    canon = [p.translate(_CANONICAL) for p in norm]
    q_norm = normalise_plate(query)
    if "*" in query or "?" in query:
        canonical, literal = _wildcard_pattern(query, canonical=True), _wildcard_pattern(query, canonical=False)
        hits = [j for j, c in enumerate(canon) if glob_match(canonical, c)]
        primary = np.full(len(hits), 100.0)
        # Matches that need a misread glyph rank below literal ones.
        secondary = np.array([100.0 if glob_match(literal, norm[j]) else 0.0 for j in hits])
    else:
        found = process.extract(q_norm.translate(_CANONICAL), canon, scorer=fuzz.ratio, processor=None,
                                score_cutoff=cutoff, limit=None)
        hits = [j for _, _, j in found]
        primary = np.array([s for _, s, _ in found], dtype=np.float64)
        secondary = np.array([fuzz.ratio(q_norm, norm[j]) for j in hits], dtype=np.float64)
    hits_arr = np.asarray(hits, dtype=np.int64)
    order = np.lexsort((hits_arr, -secondary, -primary)) if len(hits_arr) else hits_arr
    if limit is not None:
        order = order[:limit]
    return PlateMatches(rows=rows[hits_arr[order]], scores=primary[order])


def _parse(raw: str | None, row: int) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PlateQueryError(f"attributes of row {row} are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise PlateQueryError(f"attributes of row {row} must be a JSON object; got {type(value).__name__}")
    return value


def plate_texts(attributes: Sequence[str | None]) -> list[str | None]:
    """Plate text per row from attributes JSON (normalised if stored, else raw), None if absent."""
    out: list[str | None] = []
    for row, raw in enumerate(attributes):
        attrs = _parse(raw, row)
        text = attrs.get("plate_text_normalised") or attrs.get("plate_text")
        out.append(str(text) if text else None)
    return out


def parse_vehicle_query(query: str) -> tuple[str | None, str | None]:
    """"black car" -> ("car", "black"); either may be None; unknown words raise."""
    vehicle_class: str | None = None
    colour: str | None = None
    for word in query.lower().split():
        word = COLOUR_SYNONYMS.get(word, CLASS_SYNONYMS.get(word, word))
        if word in KNOWN_COLOURS and colour is None:
            colour = word
        elif word in KNOWN_CLASSES and vehicle_class is None:
            vehicle_class = word
        else:
            raise PlateQueryError(f"vehicle query word {word!r} is not a known class {sorted(KNOWN_CLASSES)} "
                                  f"or colour {sorted(KNOWN_COLOURS)} (or is repeated)")
    return vehicle_class, colour


def vehicle_mask(attributes: Sequence[str | None], query: str) -> NDArray[np.bool_]:
    """`(n,) bool`: rows whose attributes match every class/colour named in `query` ("black car")."""
    vehicle_class, colour = parse_vehicle_query(query)
    mask = np.zeros(len(attributes), dtype=bool)
    for row, raw in enumerate(attributes):
        attrs = _parse(raw, row)
        got_class = CLASS_SYNONYMS.get(str(attrs.get("class", "")).lower(), str(attrs.get("class", "")).lower())
        got_colour = str(attrs.get("colour", attrs.get("color", ""))).lower()
        got_colour = COLOUR_SYNONYMS.get(got_colour, got_colour)
        mask[row] = (vehicle_class is None or got_class == vehicle_class) and (
            colour is None or got_colour == colour)
    return mask
