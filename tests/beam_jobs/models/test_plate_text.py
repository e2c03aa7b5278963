"""Plate text normalisation, search keys and plate-likeness."""

from __future__ import annotations

import pytest

from beam_jobs.models.plate_text import is_confident_word, is_plate_like, normalise_plate, search_key


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("RK-161AG", "RK161AG"),
        ("AZJ·6991", "AZJ6991"),
        ("wsq 3021", "WSQ3021"),
        ('"RK-161AG', "RK161AG"),
        ("ČB 123", "CB123"),
    ],
)
def test_normalise_keeps_upper_alphanumerics(raw: str, text: str) -> None:
    assert normalise_plate(raw) == text


def test_search_key_folds_confusable_characters() -> None:
    assert search_key("BA302OZ") == search_key("BA3020Z")
    assert search_key("AYO9034") == search_key("AY0·9034")
    assert search_key("RZN384") != search_key("RZN385")


@pytest.mark.parametrize("raw", ["CWW-2245", "UG9L8U", "WSQ 3021", "JOG·9221", "RZN384", "B 123 XY"])
def test_plates_are_plate_like(raw: str) -> None:
    assert is_plate_like(raw)


@pytest.mark.parametrize(
    "raw",
    ["TEXAS", "2014-05-14", "2014-06-18 10:19:20", "DEALER SALES", "G1", "Cumberland Ave", "1/4MILE A B"],
)
def test_words_dates_and_fragments_are_not(raw: str) -> None:
    assert not is_plate_like(raw)


@pytest.mark.parametrize(("raw", "confidence"), [("TEXAS", 0.98), ("DEALER SALES", 0.95), ("GMC", 0.81)])
def test_sure_reads_without_digits_are_words(raw: str, confidence: float) -> None:
    assert is_confident_word(raw, confidence, 0.8)


@pytest.mark.parametrize(
    ("raw", "confidence"),
    [("HONDA", 0.68), ("UHIOFOF", 0.5), ("G9L8U", 0.95), ("L", 0.99), ("?", 0.9), ("", 0.0)],
)
def test_unsure_reads_digits_and_fragments_are_not_words(raw: str, confidence: float) -> None:
    # Each of these could be a clipped or garbled plate: the caller looks at it again.
    assert not is_confident_word(raw, confidence, 0.8)
