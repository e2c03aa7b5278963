"""Plate formats of many countries, used to undo the recogniser's letter/digit confusions (O/0, I/1 ...).

Some plate fonts draw O and 0 (or I and 1, B and 8) identically, so the recogniser is sure of the
shape but not of the class: a Slovak `BA-302OZ` reads `BA3020Z`, a Brazilian `AYO-9034` reads
`AY0-9034`. Most national formats fix which positions hold letters and which digits, so:

* a read that already fits some format is kept as it is;
* otherwise ONE confusable character is flipped to the other class, and a corrected text is returned
  only when exactly one single flip fits a format. Flips that plate fonts make look identical (O/0,
  I/1) are tried before the rarer ones (Z/2, S/5, B/8, G/6), so `BA3020Z` becomes `BA302OZ` (LL NNN LL)
  rather than `BA30202` (LL NNNNN). One flip only: with two, random misreads start to fit some format.
* a read one character too long whose first or last character is a frame edge, bolt or sticker read
  as text (`URK161AG`) is trimmed when exactly one of the two trims fits a format.

Separators in the raw read must fall on a group boundary of the format (`AY0·9034` is `LLL NNNN`,
not Poland's `LL NNNNN`). Formats are written with `L` letter, `N` digit and `-` a group boundary.
The list covers common current formats (EU members, UK, Brazil, Malaysia, common US state layouts,
Russia, Ukraine, India, Australia ...); a read of any other format simply stays uncorrected, and the
search key (`plate_text.search_key`) folds the confusables anyway, so search never depends on this.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from functools import lru_cache

from beam_jobs.models.plate_text import normalise_plate

PLATE_FORMATS: tuple[str, ...] = (
    "LLL-NNNN",  # Brazil (old), Malaysia, Lithuania-style, many US states, Poland (3-letter district)
    "LLLNLNN",  # Mercosur (Brazil, Argentina, Uruguay ...)
    "LL-NNN-LL",  # France, Italy, Slovakia, Poland (some), Montenegro
    "LLNN-LLL",  # United Kingdom
    "NNNN-LLL",  # Spain
    "LL-NNNNN",  # Poland (2-letter district), Norway
    "LL-NNNN-LL",  # Ukraine, Bulgaria, Romania (some)
    "L-NNN-LL-NN",  # Russia (2-digit region)
    "L-NNN-LL-NNN",  # Russia (3-digit region)
    "NLN-NNNN",  # Czechia
    "LLL-NNN",  # Sweden, Finland, US states, Australia (older)
    "LLL-NNL",  # Sweden (newer), Australia (NSW)
    "N-LLL-NNN",  # Belgium, California, Victoria
    "NNN-LLL",  # many US states
    "LL-NNNN",  # US states, Croatia-style
    "NN-LLL-N",  # Netherlands side codes
    "N-LLL-NN",
    "LL-NNN-L",
    "L-NNN-LL",
    "LLL-NN-L",
    "N-LL-NNN",
    "NNN-LL-N",
    "NN-LL-NN",  # Portugal (older)
    "LL-NN-LL",  # Portugal (2020)
    "LL-NN-LL-NNNN",  # India
    "LL-NN-L-NNNN",  # India
    "LL-LL-NNN",  # Germany (two-letter district and series)
    "L-LL-NNNN",  # Germany (one-letter district)
    "LLL-LL-NNN",  # Germany (three-letter district)
)
# Confusable pairs, letter <-> digit, in the order they are tried: same glyph first, look-alikes after.
_FLIP_TIERS: tuple[dict[str, str], ...] = (
    {"O": "0", "0": "O", "I": "1", "1": "I"},
    {"Q": "0", "D": "0", "Z": "2", "2": "Z", "S": "5", "5": "S", "B": "8", "8": "B", "G": "6", "6": "G"},
)
MIN_TRIMMED = 5
_SEPARATOR = re.compile(r"[\s\-·•.:_/]+")


def _classes(text: str) -> str:
    return "".join("N" if ch.isdigit() else "L" for ch in text)


@lru_cache(maxsize=1)
def _compiled() -> tuple[tuple[str, frozenset[int]], ...]:
    """Each format as (class string, set of group-boundary offsets)."""
    compiled = []
    for fmt in PLATE_FORMATS:
        groups = fmt.split("-")
        offsets = frozenset(itertools.accumulate(len(g) for g in groups[:-1]))
        compiled.append(("".join(groups), offsets))
    return tuple(compiled)


def separator_offsets(raw: str) -> frozenset[int]:
    """Offsets in the normalised text where the raw read had a separator (`AY0·9034` -> {3})."""
    offsets, count = set(), 0
    for piece in _SEPARATOR.split(raw.strip()):
        count += len(normalise_plate(piece))
        offsets.add(count)
    offsets.discard(count)
    offsets.discard(0)
    return frozenset(offsets)


def fits_format(text: str, separators: frozenset[int] = frozenset()) -> bool:
    """Whether normalised `text` has the letter/digit layout of a known format, separators on its boundaries."""
    classes = _classes(text)
    return any(classes == fmt and separators <= bounds for fmt, bounds in _compiled())


def _flips(text: str, tier: dict[str, str]) -> Iterator[str]:
    for i, ch in enumerate(text):
        if ch in tier:
            yield text[:i] + tier[ch] + text[i + 1 :]


def fit_to_format(raw: str) -> tuple[str, bool]:
    """(plate text, whether it fits a known format) for a raw read, confusables corrected when unambiguous."""
    text = normalise_plate(raw)
    separators = separator_offsets(raw)
    if fits_format(text, separators):
        return text, True
    trims = {text[1:]: frozenset(o - 1 for o in separators if o > 1), text[:-1]: separators - {len(text) - 1}}
    steps: list[set[str]] = [
        {v for v in _flips(text, _FLIP_TIERS[0]) if fits_format(v, separators)},
        {t for t, seps in trims.items() if len(t) >= MIN_TRIMMED and fits_format(t, seps)},
        {v for v in _flips(text, _FLIP_TIERS[1]) if fits_format(v, separators)},
    ]
    for fitting in steps:
        if len(fitting) == 1:
            return fitting.pop(), True
        if fitting:  # several equally small corrections: the read alone cannot decide
            return text, False
    return text, False
