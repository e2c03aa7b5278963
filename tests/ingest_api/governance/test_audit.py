"""The audit chain as pure functions: every kind of tampering is detected and located by seq."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest_api.governance.audit import (
    GENESIS,
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    Seal,
    SealFormatError,
    canonical_json,
    next_entry,
    seal_document,
    seal_from_document,
    verify_chain,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    head = GENESIS
    for i in range(n):
        record = AuditRecord(
            actor=f"user-{i % 3}",
            role="investigator",
            action="search",
            case_id="case-1",
            parameters={"fence": {"lat": 48.85, "lon": 2.35, "radius_m": 500 + i}, "legal_basis": "art. 60 CPP"},
            result_ids=[f"photo-{i}", f"photo-{i + 1}"],
        )
        entry = next_entry(head, record, T0 + timedelta(seconds=i))
        entries.append(entry)
        head = type(head)(entry.seq, entry.hash)
    return entries


def _rehash(entry: AuditEntry, **changes: object) -> AuditEntry:
    changed = replace(entry, **changes)  # type: ignore[arg-type]
    return replace(changed, hash=changed.content_hash())


def _seal(entries: list[AuditEntry]) -> Seal:
    return seal_from_document(seal_document(entries, T0 + timedelta(hours=1)), "test-seal")


def _found(entries: list[AuditEntry], seals: list[Seal] | None = None) -> set[tuple[int | None, str]]:
    return {(p.seq, p.kind) for p in verify_chain(entries, seals or []).problems}


def test_intact_chain_verifies_and_reports_head() -> None:
    entries = _chain(10)
    report = verify_chain(entries, [_seal(entries[:5])])
    assert report.ok and report.entries_checked == 10 and report.seals_checked == 1
    assert report.head.seq == 10 and report.head.hash == entries[-1].hash and report.sealed_through == 5
    assert entries[0].prev_hash == GENESIS_HASH and entries[1].prev_hash == entries[0].hash


def test_hash_is_over_canonical_json_and_fixed_utc_time() -> None:
    entry = next_entry(GENESIS, AuditRecord("a", "auditor", "view", parameters={"b": 1, "a": [1.5]}), T0)
    assert entry.parameters == '{"a":[1.5],"b":1}'
    assert entry.at == "2026-03-01T12:00:00.000000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        next_entry(GENESIS, AuditRecord("a", "auditor", "view"), datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="plain JSON"):
        canonical_json({"when": T0})
    with pytest.raises(ValueError, match="NaN|plain JSON"):
        canonical_json({"x": float("nan")})


def test_edited_entry_is_located() -> None:
    entries = _chain(8)
    entries[4] = replace(entries[4], result_ids=("photo-4",))  # hide a result
    assert _found(entries) == {(5, "altered")}


def test_edited_and_rehashed_entry_breaks_the_next_link() -> None:
    entries = _chain(8)
    entries[4] = _rehash(entries[4], actor="someone-else")
    assert _found(entries) == {(6, "broken_link")}


def test_removed_entry_is_located() -> None:
    entries = _chain(8)
    del entries[3]
    assert _found(entries) == {(4, "missing")}


def test_reordered_entries_are_located() -> None:
    entries = _chain(8)
    entries[2], entries[3] = entries[3], entries[2]
    assert _found(entries) == {(3, "reordered")}


def test_swapped_contents_keeping_seq_numbers_are_located() -> None:
    entries = _chain(8)
    # What reordering looks like in a table keyed by seq: the rows' contents swap, the seq column stays.
    entries[2], entries[3] = replace(entries[3], seq=3), replace(entries[2], seq=4)
    found = _found(entries)
    assert found == {(3, "altered"), (4, "altered"), (3, "broken_link"), (4, "broken_link"), (5, "broken_link")}


def test_inserted_entry_is_located() -> None:
    entries = _chain(8)
    forged = _rehash(entries[4], action="view", prev_hash=entries[3].hash)
    entries.insert(5, forged)  # a second seq 5, chained correctly to 4
    assert (5, "duplicate") in _found(entries)


def test_truncated_tail_is_detected_by_the_seal() -> None:
    entries = _chain(10)
    seals = [_seal(entries[:5]), _seal(entries[5:9])]
    assert verify_chain(entries[:7], []).ok  # without a seal a cut tail looks like a shorter log
    assert _found(entries[:7], seals) == {(8, "truncated")}


def test_consistent_rewrite_of_a_sealed_range_is_detected() -> None:
    entries = _chain(10)
    seals = [_seal(entries[:6])]
    rewritten = entries[:3]
    for original in entries[3:]:  # remove entry 4 and renumber and rehash everything after it
        if original.seq == 4:
            continue
        rewritten.append(_rehash(original, seq=len(rewritten) + 1, prev_hash=rewritten[-1].hash))
    assert verify_chain(rewritten, []).ok  # the chain alone cannot see a full rewrite...
    found = _found(rewritten, seals)
    assert (4, "differs_from_seal") in found and all(kind == "differs_from_seal" for _, kind in found)
    assert min(seq for seq, _ in found if seq is not None) == 4  # ...the seal says where it starts


def test_forged_seal_is_rejected() -> None:
    entries = _chain(6)
    document = seal_document(entries[:4], T0)
    document["entries"][1]["actor"] = "forger"
    report = verify_chain(entries, [seal_from_document(document, "forged")])
    assert [(p.seq, p.kind) for p in report.problems] == [(2, "bad_seal")] and report.sealed_through == 0
    with pytest.raises(SealFormatError, match="format"):
        seal_from_document({"format": "other"}, "x")
    with pytest.raises(SealFormatError, match="malformed"):
        seal_from_document({"format": document["format"], "entries": [{"seq": 1}]}, "x")
