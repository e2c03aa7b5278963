"""Plate-format rules: confusable letters/digits corrected only when one known format decides it."""

from __future__ import annotations

import pytest

from beam_jobs.models.plate_formats import fit_to_format, fits_format, separator_offsets


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BA3020Z", ("BA302OZ", True)),  # Slovak LL NNN LL: O and 0 share a glyph
        ("AY0·9034", ("AYO9034", True)),  # Brazil LLL NNNN; the separator rules out Poland's LL NNNNN
        ("J0G-9221", ("JOG9221", True)),
        ("URK·161AG", ("RK161AG", True)),  # a frame edge read as a leading letter
        ("CWW-2245", ("CWW2245", True)),  # already fits: unchanged
        ("WA·56660", ("WA56660", True)),
        ("AB12CDE", ("AB12CDE", True)),  # UK
        ("UHIFOF", ("UHIFOF", False)),  # no known format within one flip: left as read
        ("AWA56660", ("AWA56660", False)),  # two different trims fit: ambiguous, left as read
    ],
)
def test_fit_to_format(raw: str, expected: tuple[str, bool]) -> None:
    assert fit_to_format(raw) == expected


def test_separators_must_fall_on_group_boundaries() -> None:
    assert separator_offsets("AY0·9034") == {3}
    assert separator_offsets("AB 123 CD") == {2, 5}
    assert separator_offsets("RZN384") == frozenset()
    assert fits_format("WA56660", frozenset({2}))
    assert not fits_format("WA56660", frozenset({3}))
