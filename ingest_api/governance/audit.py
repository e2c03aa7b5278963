"""The tamper-evident audit chain, as pure functions: build entries, seal segments, verify everything.

Every entry carries the SHA-256 of the previous entry (`prev_hash`) and its own `hash`, computed over a canonical
JSON encoding of all its fields including `prev_hash`. Editing an entry breaks its hash; removing, inserting or
reordering breaks the next entry's link; rewriting the whole tail consistently is caught by the seals, copies of
past segments written under object lock (see `seals`). `verify_chain` says what is wrong and at which `seq`.

Times are stored as fixed-format UTC strings and parameters as canonical JSON text, so what is hashed is exactly
what any store gives back, whatever its date or JSON handling.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

FORMAT = "witness-audit/1"
SEAL_FORMAT = "witness-audit-seal/1"
GENESIS_HASH = "0" * 64
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

ProblemKind = Literal[
    "altered", "broken_link", "missing", "duplicate", "reordered", "truncated", "differs_from_seal", "bad_seal"
]


class SealFormatError(ValueError):
    """A seal document is not one we wrote (wrong format, missing or mistyped fields)."""


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no spaces, UTF-8, no NaN. Raises ValueError for non-JSON values."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"audit values must be plain JSON (str, number, bool, None, list, dict): {error}") from error


def utc_text(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"audit time must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


@dataclass(frozen=True)
class AuditRecord:
    """What a caller audits: who (actor, role) did what (action) for which case, with which parameters/results."""

    actor: str
    role: str
    action: str
    case_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    result_ids: Sequence[str] = ()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str  # UTC, TIME_FORMAT
    actor: str
    role: str
    action: str
    case_id: str | None
    parameters: str  # canonical JSON text of an object
    result_ids: tuple[str, ...]
    prev_hash: str
    hash: str

    def content_hash(self) -> str:
        """The hash this entry's fields give; equals `hash` unless the entry was altered."""
        body = {k: v for k, v in asdict(self).items() if k != "hash"}
        body["result_ids"] = list(self.result_ids)
        body["format"] = FORMAT
        return hashlib.sha256(canonical_json(body).encode()).hexdigest()

    def to_document(self) -> dict[str, Any]:
        document = asdict(self)
        document["result_ids"] = list(self.result_ids)
        return document

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AuditEntry:
        try:
            return cls(
                seq=int(document["seq"]),
                at=str(document["at"]),
                actor=str(document["actor"]),
                role=str(document["role"]),
                action=str(document["action"]),
                case_id=None if document["case_id"] is None else str(document["case_id"]),
                parameters=str(document["parameters"]),
                result_ids=tuple(str(r) for r in document["result_ids"]),
                prev_hash=str(document["prev_hash"]),
                hash=str(document["hash"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SealFormatError(f"not an audit entry ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


GENESIS = ChainHead(0, GENESIS_HASH)


def next_entry(head: ChainHead, record: AuditRecord, at: datetime) -> AuditEntry:
    """The entry that follows `head` (GENESIS for an empty log)."""
    if not record.actor or not record.role or not record.action:
        raise ValueError(f"audit record needs actor, role and action, got {record!r}")
    unsigned = AuditEntry(
        seq=head.seq + 1,
        at=utc_text(at),
        actor=record.actor,
        role=record.role,
        action=record.action,
        case_id=record.case_id,
        parameters=canonical_json(dict(record.parameters)),
        result_ids=tuple(str(r) for r in record.result_ids),
        prev_hash=head.hash,
        hash="",
    )
    return replace(unsigned, hash=unsigned.content_hash())


@dataclass(frozen=True)
class Seal:
    """A sealed segment: consecutive entries and the chain head after them, as read back from the object store."""

    first_seq: int
    last_seq: int
    head_hash: str
    sealed_at: str
    entries: tuple[AuditEntry, ...]
    location: str = ""  # where it was read from (bucket/key@version), for reports


def seal_document(entries: Sequence[AuditEntry], sealed_at: datetime) -> dict[str, Any]:
    if not entries:
        raise ValueError("cannot seal an empty segment")
    return {
        "format": SEAL_FORMAT,
        "first_seq": entries[0].seq,
        "last_seq": entries[-1].seq,
        "head_hash": entries[-1].hash,
        "sealed_at": utc_text(sealed_at),
        "entries": [entry.to_document() for entry in entries],
    }


def seal_from_document(document: Mapping[str, Any], location: str = "") -> Seal:
    if document.get("format") != SEAL_FORMAT:
        raise SealFormatError(f"{location}: format is {document.get('format')!r}, expected {SEAL_FORMAT!r}")
    try:
        entries = tuple(AuditEntry.from_document(item) for item in document["entries"])
        return Seal(
            first_seq=int(document["first_seq"]),
            last_seq=int(document["last_seq"]),
            head_hash=str(document["head_hash"]),
            sealed_at=str(document["sealed_at"]),
            entries=entries,
            location=location,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise SealFormatError(f"{location}: malformed seal ({type(error).__name__}: {error})") from error


@dataclass(frozen=True)
class ChainProblem:
    seq: int | None
    kind: ProblemKind
    detail: str


@dataclass(frozen=True)
class ChainReport:
    entries_checked: int
    seals_checked: int
    head: ChainHead
    sealed_through: int  # highest seq covered by a valid seal; entries after it are protected by the chain only
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _seal_problems(seal: Seal) -> list[ChainProblem]:
    """A seal must be a well-formed, internally chained segment; otherwise it proves nothing."""
    where = seal.location or f"seal {seal.first_seq}-{seal.last_seq}"
    if not seal.entries:
        return [ChainProblem(seal.first_seq, "bad_seal", f"{where}: no entries")]
    seqs = [entry.seq for entry in seal.entries]
    if seqs != list(range(seal.first_seq, seal.last_seq + 1)):
        return [ChainProblem(seal.first_seq, "bad_seal", f"{where}: entries {seqs[0]}..{seqs[-1]} are not its range")]
    for before, entry in zip((None, *seal.entries), seal.entries, strict=False):
        if entry.content_hash() != entry.hash:
            return [ChainProblem(entry.seq, "bad_seal", f"{where}: sealed entry {entry.seq} does not match its hash")]
        if before is not None and entry.prev_hash != before.hash:
            return [ChainProblem(entry.seq, "bad_seal", f"{where}: sealed entry {entry.seq} does not chain")]
    if seal.entries[-1].hash != seal.head_hash:
        return [ChainProblem(seal.last_seq, "bad_seal", f"{where}: head hash is not its last entry's hash")]
    return []


def verify_chain(entries: Iterable[AuditEntry], seals: Iterable[Seal] = ()) -> ChainReport:
    """Check `entries` as stored (in storage order) against themselves and against `seals`.

    Detects: an edited entry (`altered`, or `broken_link` on the next one if its hash was recomputed), a removed
    one (`missing`), one stored out of order (`reordered`), a duplicated seq (`duplicate`), entries cut from the
    end that a seal had covered (`truncated`), and a consistent rewrite of a sealed range (`differs_from_seal`).
    """
    stored = list(entries)
    problems: list[ChainProblem] = []
    by_seq: dict[int, AuditEntry] = {}
    counts = Counter(entry.seq for entry in stored)
    highest = 0
    for entry in stored:
        if entry.content_hash() != entry.hash:
            problems.append(ChainProblem(entry.seq, "altered", f"entry {entry.seq}'s fields do not match its hash"))
        if entry.seq < highest:
            problems.append(ChainProblem(entry.seq, "reordered", f"entry {entry.seq} is stored after entry {highest}"))
        highest = max(highest, entry.seq)
        by_seq.setdefault(entry.seq, entry)
    for seq, count in sorted(counts.items()):
        if count > 1:
            problems.append(ChainProblem(seq, "duplicate", f"seq {seq} is stored {count} times"))
    for seq in range(1, highest + 1):
        if seq not in by_seq:
            problems.append(ChainProblem(seq, "missing", f"entry {seq} is absent (between {seq - 1} and {seq + 1})"))
            continue
        entry = by_seq[seq]
        expected = GENESIS_HASH if seq == 1 else (by_seq[seq - 1].hash if seq - 1 in by_seq else None)
        if expected is not None and entry.prev_hash != expected:
            problems.append(
                ChainProblem(seq, "broken_link", f"entry {seq} does not chain to entry {seq - 1}: edited or replaced")
            )
    sealed_through, seals_checked = 0, 0
    for seal in sorted(seals, key=lambda s: (s.first_seq, s.last_seq)):
        seals_checked += 1
        if bad := _seal_problems(seal):
            problems.extend(bad)
            continue
        sealed_through = max(sealed_through, seal.last_seq)
        for sealed in seal.entries:
            kept = by_seq.get(sealed.seq)
            if kept is not None and kept != sealed:
                problems.append(
                    ChainProblem(sealed.seq, "differs_from_seal", f"entry {sealed.seq} differs from {seal.location}")
                )
    if sealed_through > highest:
        problems.append(
            ChainProblem(
                highest + 1, "truncated", f"log ends at {highest} but seals cover up to {sealed_through}: tail removed"
            )
        )
    head = ChainHead(highest, by_seq[highest].hash) if highest in by_seq else GENESIS
    problems.sort(key=lambda p: (p.seq if p.seq is not None else -1, p.kind))
    return ChainReport(len(stored), seals_checked, head, sealed_through, tuple(problems))
