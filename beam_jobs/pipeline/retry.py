"""Which manifests `witness extract --retry-failed` extracts again: those on which a model family raised the last
time a committed run ran that family on them (a `model_failed` dead letter), e.g. after the family was fixed.

    outcomes = read_run_outcomes(client, catalog_bucket, load_state(client, catalog_bucket))
    again = manifests_to_retry(pending_failures(outcomes), families=("faces", "objects", "plates"))

A failure is pending per (manifest, family) and is settled by the latest committed run (state.json order, oldest
first) that ran that family on that manifest: a later run without a `model_failed` dead letter for it fixed it,
one with it failed again. Runs record the families they ran in `_SUCCESS.json` ("families"; erasure's redacted
copies keep their run's); where that is not recorded (runs from before it was) a run only adds failures and clears
none, so a failure is never taken for fixed by a run that may not have run the family (re-extracting a photo is
harmless: readers keep the newest run's row per photo and detection id, indexers skip detection ids they hold).

Mapping a dead letter back to its manifest: `object_key` and `sha256` name the original, and originals are
content-addressed (the same bytes sent by two witnesses, or to two events, are one object), so they do not tell
the manifests apart. The row's `manifest_key` does; in parts written before that column existed it is null and
the detail ends with ` (manifest <key>)` instead (event and submission ids are UUIDs, so a key holds neither
spaces nor brackets). That key is used only if its run processed it and it names the same sha256. A row that
fails these checks is reported as unmapped, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from minio import Minio

from beam_jobs.pipeline.catalog import CatalogState, read_part, read_success
from beam_jobs.records import MODEL_FAILED

log = logging.getLogger(__name__)

MANIFEST_MARK = " (manifest "


@dataclass(frozen=True)
class RunOutcome:
    """What one committed run did to the manifests it processed, as far as model failures go."""

    run_id: str
    manifests: frozenset[str]
    families: frozenset[str] | None  # the families it ran; None where its _SUCCESS.json does not say
    failures: Mapping[str, frozenset[str]] = field(default_factory=dict)  # manifest key -> families that raised
    unmapped: tuple[str, ...] = ()  # details of model_failed rows that name no manifest of this run


def failure_manifest(detail: str) -> str | None:
    """The manifest key an old `model_failed` detail ends with (`... (manifest <key>)`), or None."""
    head, mark, tail = detail.rpartition(MANIFEST_MARK)
    if not mark or not head or not tail.endswith(")") or " " in tail:
        return None
    return tail[:-1] or None


def failure_family(detail: str) -> str:
    """The family a `model_failed` detail names first (`<family> <version>: <error> ...`)."""
    return detail.split(" ", 1)[0]


def run_outcome(run_id: str, manifests: Iterable[str], families: Iterable[str] | None,
                dead_letters: Iterable[Mapping[str, object]]) -> RunOutcome:
    """The `RunOutcome` of a run from its `_SUCCESS.json` manifests and families and its dead-letter rows
    (`DEAD_LETTER_SCHEMA` as dicts; other reasons are ignored)."""
    processed = frozenset(manifests)
    failures: dict[str, set[str]] = {}
    unmapped: list[str] = []
    for row in dead_letters:
        if row["reason"] != MODEL_FAILED:
            continue
        detail, sha256 = str(row["detail"]), row["sha256"]
        named = row.get("manifest_key")
        key = named if isinstance(named, str) else failure_manifest(detail)
        if key is None or key not in processed or not key.endswith(f"/{sha256}.json"):
            unmapped.append(detail)
            continue
        failures.setdefault(key, set()).add(failure_family(detail))
    return RunOutcome(run_id, processed, None if families is None else frozenset(families),
                      {key: frozenset(names) for key, names in failures.items()}, tuple(unmapped))


def pending_failures(outcomes: Sequence[RunOutcome]) -> dict[str, frozenset[str]]:
    """Manifest key -> the families whose latest run on it raised (`outcomes` oldest first, as state.json lists
    the runs); manifests with no pending failure are left out."""
    failing: dict[str, set[str]] = {}
    for outcome in outcomes:
        for key in outcome.manifests:
            raised = outcome.failures.get(key, frozenset())
            current = failing.setdefault(key, set())
            if outcome.families is not None:
                current -= outcome.families - raised
            current |= raised
    return {key: frozenset(names) for key, names in sorted(failing.items()) if names}


def manifests_to_retry(pending: Mapping[str, Collection[str]], *, families: Collection[str],
                       present: Collection[str] | None = None) -> list[str]:
    """Sorted manifest keys with a pending failure of a family in `families` (the ones the retry runs); with
    `present`, only those still in the evidence bucket (an erased or expired manifest cannot be read again)."""
    return sorted(key for key, names in pending.items()
                  if set(names) & set(families) and (present is None or key in present))


def read_run_outcomes(client: Minio, catalog_bucket: str, state: CatalogState) -> list[RunOutcome]:
    """The `RunOutcome` of every committed run in `state`, oldest first (only dead-letter parts are read)."""
    outcomes: list[RunOutcome] = []
    for run_id in state.runs:
        success = read_success(client, catalog_bucket, run_id)
        rows: list[dict[str, object]] = []
        for part in success["parts"]:
            if part["table"] == "dead_letters":
                rows += read_part(client, catalog_bucket, part).to_pylist()
        outcome = run_outcome(run_id, success["manifests"], success.get("families"), rows)
        if outcome.unmapped:
            log.warning("run %s: %d model_failed dead letters name no manifest of the run, not retried: %s",
                        run_id, len(outcome.unmapped), "; ".join(outcome.unmapped[:3]))
        outcomes.append(outcome)
    return outcomes
