"""Fuzzing plate normalisation, plate search and vehicle queries with arbitrary text.

Plate text comes from OCR (any glyph) and from investigators typing queries (any keyboard, any
script); the only exception allowed out is `PlateQueryError` with a message naming the bad value.

    .venv/bin/pytest tests/indexers/test_fuzz_plates.py            # CI set, seconds
    .venv/bin/pytest tests/indexers/test_fuzz_plates.py -m slow    # 10,000 cases each
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexers.plates import (
    PlateQueryError,
    canonical_plate,
    normalise_plate,
    parse_vehicle_query,
    plate_texts,
    search_plates,
    vehicle_mask,
)
from tests.reliability.nightly import skip_unless_slow_selected

CI = settings(
    max_examples=200, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
NIGHTLY = settings(CI, max_examples=10_000, derandomize=False)
PLATE_ALPHABET = re.compile(r"[0-9A-Z]*")

# Plate-like text (what OCR and witnesses produce) mixed with any Unicode at all; full-width forms,
# ligatures and superscripts change under NFKC, which is where normalisers go wrong.
_PLATE_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -.·ＡＢ１２ⅠⅡ①²ﬁßİı*?")
TEXT = st.text(_PLATE_CHARS, max_size=14) | st.text(max_size=14)
QUERY = TEXT | st.lists(st.sampled_from(["*", "?", "AB", "12", "O", "0", "-"]), max_size=6).map("".join)
PLATES = st.lists(st.none() | TEXT, max_size=30)


def check_normalisation(text: str) -> None:
    normal = normalise_plate(text)
    assert PLATE_ALPHABET.fullmatch(normal), normal
    assert normalise_plate(normal) == normal
    canonical = canonical_plate(text)
    assert len(canonical) == len(normal) and canonical_plate(canonical) == canonical
    assert not set(canonical) & set("ODQIL7BSZG"), canonical


def check_search(query: str, plates: list[str | None], limit: int | None) -> None:
    try:
        matches = search_plates(query, plates, limit=limit)
    except PlateQueryError as refused:
        assert repr(query) in str(refused)
        return
    rows, scores = matches.rows, matches.scores
    assert rows.dtype == np.int64 and scores.dtype == np.float64 and rows.shape == scores.shape
    assert len(set(rows.tolist())) == len(rows), "a plate returned twice"
    assert all(0 <= row < len(plates) and plates[row] for row in rows)
    assert np.all((scores >= 0) & (scores <= 100)) and np.all(np.diff(scores) <= 0)
    if limit is not None:
        assert len(rows) <= limit
    wildcard = "*" in query or "?" in query
    if not wildcard and limit is None and normalise_plate(query):
        # A plate identical after normalisation is always found, with a perfect score.
        same = [i for i, plate in enumerate(plates) if plate and normalise_plate(plate) == normalise_plate(query)]
        assert set(same) <= set(rows.tolist())
        assert all(scores[rows.tolist().index(i)] == 100 for i in same)


def check_vehicle_query(query: str) -> None:
    try:
        vehicle_class, colour = parse_vehicle_query(query)
    except PlateQueryError as refused:
        assert "vehicle query word" in str(refused)
        return
    attributes = [json.dumps({"class": vehicle_class, "colour": colour}), None, "{}"]
    mask = vehicle_mask(attributes, query)
    assert mask.dtype == np.bool_ and mask[0] and (not mask[1] or query.strip() == "")


def test_fuzz_normalisation() -> None:
    CI(given(TEXT)(check_normalisation))()


def test_fuzz_search() -> None:
    CI(given(QUERY, PLATES, st.none() | st.integers(0, 5))(check_search))()


def test_fuzz_vehicle_queries() -> None:
    words = st.sampled_from(["black", "car", "Gray", "lorry", "navy", "bike", "purple", "ufo", " ", "\u00a0"])
    CI(given(st.lists(words, max_size=4).map(" ".join) | st.text(max_size=20))(check_vehicle_query))()


def test_fuzz_attributes_json() -> None:
    @CI
    @given(st.lists(st.none() | st.text(max_size=30) | st.builds(json.dumps, st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
            st.sampled_from(["plate_text", "plate_text_normalised", "class", "colour"]), inner, max_size=3),
        max_leaves=8)), max_size=8))
    def run(attributes: list[str | None]) -> None:
        try:
            texts = plate_texts(attributes)
        except PlateQueryError as refused:
            assert "attributes of row" in str(refused)
            return
        assert len(texts) == len(attributes)

    run()


@pytest.mark.slow
def test_fuzz_normalisation_nightly(request: pytest.FixtureRequest) -> None:
    skip_unless_slow_selected(request)
    NIGHTLY(given(TEXT)(check_normalisation))()


@pytest.mark.slow
def test_fuzz_search_nightly(request: pytest.FixtureRequest) -> None:
    skip_unless_slow_selected(request)
    NIGHTLY(given(QUERY, PLATES, st.none() | st.integers(0, 5))(check_search))()
