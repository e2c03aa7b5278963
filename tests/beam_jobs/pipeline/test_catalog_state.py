"""state.json under concurrent writers: the pure changes, and commits and swaps racing on the real S3 server.

Before state.json writes were conditional, each of these races lost an update: a commit's run vanished from
state.json, or a stale commit put back a run an erasure had swapped out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import pytest
from minio import Minio

from beam_jobs.pipeline.catalog import (
    CatalogState,
    RunVerificationError,
    commit_run,
    load_state,
    replace_run,
    state_document,
    state_from_document,
    update_state,
    with_run,
    with_run_replaced,
)

STATE = CatalogState(("r1", "r2"), frozenset({"m1", "m2"}))


def test_with_run_appends_the_run_and_its_manifests() -> None:
    assert with_run(STATE, "r3", ["m3", "m2"]) == CatalogState(("r1", "r2", "r3"), frozenset({"m1", "m2", "m3"}))


def test_with_run_leaves_a_committed_run_as_it_is() -> None:
    assert with_run(STATE, "r1", ["m9"]) == STATE


def test_with_run_replaced_swaps_in_place_and_keeps_processed() -> None:
    assert with_run_replaced(STATE, "r1", "r1b") == CatalogState(("r1b", "r2"), STATE.processed)


def test_with_run_replaced_is_a_no_op_once_done_and_refuses_an_uncommitted_run() -> None:
    done = with_run_replaced(STATE, "r1", "r1b")
    assert with_run_replaced(done, "r1", "r1b") == done
    with pytest.raises(RunVerificationError, match="r9 is no longer committed"):
        with_run_replaced(STATE, "r9", "r9b")


def test_the_state_document_round_trips() -> None:
    assert state_from_document(state_document(STATE)) == STATE
    assert state_from_document(None) == CatalogState()
    assert state_document(STATE) == {"runs": ["r1", "r2"], "processed": ["m1", "m2"]}


@pytest.fixture
def bucket(versioned_bucket: str) -> str:
    return versioned_bucket


def _commit(client: Minio, bucket: str, run_id: str) -> None:
    commit_run(client, bucket, run_id, parts=[], manifests=[f"m-{run_id}"], extracted_by="test")


def _together(*actions: Callable[[], object]) -> None:
    """Run `actions` in threads released at the same moment; re-raise the first failure."""
    start = threading.Barrier(len(actions))
    failures: list[Exception] = []

    def run(action: Callable[[], object]) -> None:
        start.wait()
        try:
            action()
        except Exception as error:  # handed to the test thread, which re-raises it
            failures.append(error)

    threads = [threading.Thread(target=run, args=(action,)) for action in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_two_launchers_committing_at_once_lose_no_run(s3_client: Minio, bucket: str) -> None:
    rounds = 25
    for n in range(rounds):
        _together(partial(_commit, s3_client, bucket, f"a-{n:02d}"), partial(_commit, s3_client, bucket, f"b-{n:02d}"))
    state = load_state(s3_client, bucket)
    expected = {f"{side}-{n:02d}" for side in "ab" for n in range(rounds)}
    assert set(state.runs) == expected and len(state.runs) == 2 * rounds
    assert state.processed == {f"m-{run}" for run in expected}


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_commits_racing_swaps_keep_both(s3_client: Minio, bucket: str) -> None:
    rounds = 15
    for n in range(rounds):
        _commit(s3_client, bucket, f"old-{n:02d}")
    for n in range(rounds):
        _together(partial(replace_run, s3_client, bucket, f"old-{n:02d}", f"new-{n:02d}"),
                  partial(_commit, s3_client, bucket, f"late-{n:02d}"))
    state = load_state(s3_client, bucket)
    assert [run for run in state.runs if not run.startswith("late-")] == [f"new-{n:02d}" for n in range(rounds)]
    assert {run for run in state.runs if run.startswith("late-")} == {f"late-{n:02d}" for n in range(rounds)}
    assert state.processed == {f"m-old-{n:02d}" for n in range(rounds)} | {f"m-late-{n:02d}" for n in range(rounds)}


@pytest.mark.integration
def test_a_commit_landing_between_the_swaps_read_and_write_is_kept_and_the_swap_still_happens(
    s3_client: Minio, bucket: str
) -> None:
    _commit(s3_client, bucket, "old")
    reads: list[CatalogState] = []

    def swap(state: CatalogState) -> CatalogState:
        reads.append(state)
        if len(reads) == 1:  # a launcher commits after the erasure read state.json: the erasure's write gets a 412
            _commit(s3_client, bucket, "late")
        return with_run_replaced(state, "old", "new")

    assert update_state(s3_client, bucket, swap).runs == ("new", "late")
    assert [state.runs for state in reads] == [("old",), ("old", "late")]
    assert load_state(s3_client, bucket) == CatalogState(("new", "late"), frozenset({"m-old", "m-late"}))
