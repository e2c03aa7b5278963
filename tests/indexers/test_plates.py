"""Plate normalisation, OCR-confusion-aware fuzzy matching, wildcards and vehicle attribute filters."""

from __future__ import annotations

import fnmatch
import json

import numpy as np
import pytest

from indexers.plates import (
    PlateQueryError,
    canonical_plate,
    glob_match,
    normalise_plate,
    parse_vehicle_query,
    plate_texts,
    search_plates,
    vehicle_mask,
)

PLATES = ["RK87BAC", "RK-878-AC", "XY123ZZ", None, "rk 878 ad", "AB12XYZ", "A812XYZ", "AB1", "CD12XYZ"]


def found(query: str, **kwargs: float) -> list[str | None]:
    return [PLATES[i] for i in search_plates(query, PLATES, **kwargs).rows]  # type: ignore[arg-type]


def test_normalisation_and_canonical_form() -> None:
    assert normalise_plate(" rk-878.ac ") == "RK878AC"
    assert normalise_plate("ＡＢ１２") == "AB12"  # full-width input from phone keyboards
    assert canonical_plate("RK87BAC") == canonical_plate("RK878AC")
    assert canonical_plate("O0DQ IL17 8B 5S 2Z 6G") == "0000111188552266"


def test_fuzzy_finds_ocr_confusions_and_ranks_literal_first() -> None:
    hits = found("RK878AC")
    assert hits[:2] == ["RK-878-AC", "RK87BAC"]  # literal match before the 8/B misread
    assert "rk 878 ad" in hits  # one substitution (D for C) is still close
    assert "XY123ZZ" not in hits and "AB12XYZ" not in hits
    scores = search_plates("RK878AC", PLATES).scores
    assert scores[0] == 100.0 and np.all(np.diff(scores) <= 0)


def test_cutoff_excludes_distant_plates() -> None:
    assert found("RK878AC", cutoff=99.0) == ["RK-878-AC", "RK87BAC"]
    assert found("ZZ999QQ") == []


def test_wildcards() -> None:
    assert found("AB-12*") == ["AB12XYZ", "A812XYZ"]  # the B/8 misread ranks after the literal
    assert found("AB?") == ["AB1"]
    assert found("?D12*") == ["CD12XYZ"]
    assert found("AB-12*", limit=1) == ["AB12XYZ"]


def test_empty_query_is_refused() -> None:
    with pytest.raises(PlateQueryError, match="no letters or digits"):
        search_plates(" - ", PLATES)


def test_vehicle_attributes() -> None:
    attrs = [
        json.dumps({"class": "car", "colour": "black", "plate_text": "RK-878-AC"}),
        json.dumps({"class": "car", "color": "Gray", "plate_text_normalised": "AB12XYZ"}),
        json.dumps({"class": "truck", "colour": "black"}),
        None,
    ]
    assert vehicle_mask(attrs, "black car").tolist() == [True, False, False, False]
    assert vehicle_mask(attrs, "grey automobile").tolist() == [False, True, False, False]
    assert vehicle_mask(attrs, "black").tolist() == [True, False, True, False]
    assert parse_vehicle_query("Lorry black") == ("truck", "black")
    with pytest.raises(PlateQueryError, match="'spaceship'"):
        parse_vehicle_query("black spaceship")
    assert plate_texts(attrs) == ["RK-878-AC", "AB12XYZ", None, None]
    with pytest.raises(PlateQueryError, match="row 1 are not valid JSON"):
        plate_texts([None, "{oops"])


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("AB12*", "AB1234", True), ("AB12*", "XAB1234", False), ("*34", "AB1234", True), ("A?12*", "AB1234", True),
        ("A?12", "AB1234", False), ("*", "", True), ("", "", True), ("?", "", False), ("**A**", "BAB", True),
        ("*A*B*C", "XAYBZC", True), ("*A*B*C", "XAYBZ", False),
    ],
)
def test_glob_match_agrees_with_fnmatch(pattern: str, text: str, expected: bool) -> None:
    assert glob_match(pattern, text) is expected is fnmatch.fnmatchcase(text, pattern)


def test_hostile_wildcard_query_gets_an_answer() -> None:
    # The regex version backtracked for 17 s on this query; the matcher is O(len(pattern) * len(text)).
    assert not glob_match("*A" * 10 + "*B", "A" * 30)
    matches = search_plates("*A" * 10 + "*!B", ["A" * 30] * 10)
    assert len(matches.rows) == 0
