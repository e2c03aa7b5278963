"""Licence-plate text normalisation and plate-likeness rules (pure string functions).

OCR output such as `RK-161AG`, `AZJ·6991` or `WSQ 3021` becomes `RK161AG`, `AZJ6991`, `WSQ3021`.
`search_key` also folds characters OCR and witnesses confuse (O/0, I/1, Z/2, S/5, B/8) so a query for
`BA302OZ` finds a read of `BA3020Z`; store both and match on the key, show the normalised text.
"""

from __future__ import annotations

import re
import unicodedata

MIN_PLATE_CHARS = 4
MAX_PLATE_CHARS = 9
# Plates carry at most a couple of separators; longer phrases ("EXIT 79B NORTH") are signs.
MAX_SEPARATORS = 2
_CONFUSABLE = str.maketrans({"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "B": "8"})
_SEPARATORS = re.compile(r"[\s\-·•.:_/]+")


def normalise_plate(raw: str) -> str:
    """Upper-case ASCII letters and digits only (accents stripped: `Č` -> `C`)."""
    folded = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.upper() if ch.isalnum())


def search_key(text: str) -> str:
    """Normalised text with confusable characters folded to digits, for matching reads to queries."""
    return normalise_plate(text).translate(_CONFUSABLE)


def is_plate_like(raw: str) -> bool:
    """Whether OCR text looks like a plate: 4-9 alphanumerics, with both letters and digits, few gaps.

    Dates and clocks (all digits) and words (no digits) are rejected; a sign like `EXIT 79B` can still
    pass, so callers should prefer reads inside a vehicle box when they have one.
    """
    text = normalise_plate(raw)
    if not MIN_PLATE_CHARS <= len(text) <= MAX_PLATE_CHARS:
        return False
    if not (any(ch.isdigit() for ch in text) and any(ch.isalpha() for ch in text)):
        return False
    separators = len(_SEPARATORS.findall(raw.strip()))
    stray = sum(1 for ch in raw.strip() if not ch.isalnum() and not _SEPARATORS.fullmatch(ch))
    return separators <= MAX_SEPARATORS and stray <= 1


def is_confident_word(raw: str, confidence: float, min_confidence: float) -> bool:
    """Whether a read is a sure read of a word: at least 2 letters, no digit, confidence >= `min_confidence`.

    Plates carry digits (`is_plate_like`); a badge or a state name read with confidence is not a plate
    whose characters were clipped, so looking at it again cannot give a plate.
    """
    text = normalise_plate(raw)
    return confidence >= min_confidence and len(text) >= 2 and not any(ch.isdigit() for ch in text)
