"""`--retry-failed`: which manifests a model failure leaves pending (pure), and re-extraction through the real job
(DirectRunner, real S3, the real face family poisoned on one photo size, then fixed; see `poisoned_family`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

import pytest
from minio import Minio

from beam_jobs.models import registry
from beam_jobs.pipeline.catalog import load_state, read_committed, read_part, read_success
from beam_jobs.pipeline.detect import ModelFailure
from beam_jobs.pipeline.launcher import parse_args, run_extract, summary_table
from beam_jobs.pipeline.manifests import PendingPhoto
from beam_jobs.pipeline.retry import (
    RunOutcome,
    failure_manifest,
    manifests_to_retry,
    pending_failures,
    read_run_outcomes,
    run_outcome,
)
from beam_jobs.pipeline.settings import ExtractSettings
from beam_jobs.pipeline.transforms import model_failed
from beam_jobs.records import MODEL_FAILED
from infra.storage.client import build_client
from infra.storage.evidence import manifest_key

from .conftest import put_evidence
from .poisoned_family import POISONED_FACES, resized_jpeg

SHA = hashlib.sha256(b"the same bytes from two witnesses").hexdigest()
ORIGINAL = f"originals/{SHA[:2]}/{SHA[2:4]}/{SHA}"
KEY_A = manifest_key(event_id="ev-1", submission_id="sub-a", sha256=SHA)
KEY_B = manifest_key(event_id="ev-2", submission_id="sub-b", sha256=SHA)
OTHER = manifest_key(event_id="ev-1", submission_id="sub-c", sha256="0" * 64)
MakeSettings = Callable[[str, str], ExtractSettings]


def failure_row(key: str, family: str = "faces", error: str = "error: injected") -> dict[str, object]:
    """A `model_failed` dead letter as the job writes it (`transforms.model_failed`), as a row."""
    sha256 = key.rsplit("/", 1)[1].removesuffix(".json")
    original = f"originals/{sha256[:2]}/{sha256[2:4]}/{sha256}"  # content-addressed: one per bytes, not per upload
    pending = PendingPhoto(key, "ev", "sub", sha256, original, None, datetime(2024, 6, 1, tzinfo=UTC), None, None)
    return model_failed(ModelFailure(family, "v1", error), pending, sha256, run_id="r").to_row()


def outcome(run_id: str, manifests: list[str], failures: dict[str, set[str]],
            families: Collection[str] | None = ("faces", "plates")) -> RunOutcome:
    return RunOutcome(run_id, frozenset(manifests), None if families is None else frozenset(families),
                      {key: frozenset(names) for key, names in failures.items()})


def test_failure_manifest_is_the_key_an_old_detail_ends_with() -> None:
    assert failure_manifest(f"faces v1: error: (manifest manifests/x/y/z.json) in text (manifest {KEY_A})") == KEY_A
    assert failure_manifest("faces v1: error: no key here") is None
    assert failure_manifest("faces v1: error (manifest two words)") is None


def test_the_row_names_its_manifest_and_old_rows_are_read_from_their_detail() -> None:
    row = failure_row(KEY_A)
    assert row["manifest_key"] == KEY_A and "manifest" not in str(row["detail"])
    # Written before the column existed: null there, the key at the end of the detail.
    old = {**failure_row(KEY_B), "manifest_key": None, "detail": f"faces v1: error: injected (manifest {KEY_B})"}
    result = run_outcome("r", [KEY_A, KEY_B], ["faces"], [row, old])
    assert dict(result.failures) == {KEY_A: frozenset({"faces"}), KEY_B: frozenset({"faces"})}
    assert result.unmapped == ()


def test_a_failure_maps_to_its_manifest_not_to_the_shared_original() -> None:
    row = failure_row(KEY_A)
    assert (row["object_key"], row["sha256"]) == (ORIGINAL, SHA)  # what KEY_B's photo would name too
    refused = {"object_key": ORIGINAL, "sha256": SHA, "reason": "corrupt", "detail": f"bad (manifest {KEY_B})",
               "run_id": "r"}
    result = run_outcome("r", [KEY_A, KEY_B], ["faces"], [row, failure_row(KEY_A, "plates"), refused])
    assert dict(result.failures) == {KEY_A: frozenset({"faces", "plates"})}  # KEY_B: same bytes, no failure
    assert result.unmapped == ()


def test_failures_naming_no_manifest_of_their_run_are_unmapped_not_guessed() -> None:
    elsewhere = failure_row(OTHER)  # a manifest the run did not process
    wrong_sha = {**failure_row(KEY_A), "sha256": "f" * 64}
    no_key = {**failure_row(KEY_A), "manifest_key": None}  # an old row whose detail names no manifest
    result = run_outcome("r", [KEY_A], None, [elsewhere, wrong_sha, no_key])
    assert dict(result.failures) == {} and len(result.unmapped) == 3
    assert result.families is None


def test_the_latest_run_that_ran_the_family_settles_a_failure() -> None:
    first = outcome("r1", [KEY_A, KEY_B, OTHER], {KEY_A: {"faces"}, KEY_B: {"faces", "plates"}, OTHER: {"faces"}})
    fixed_a = outcome("r2", [KEY_A], {})
    b_plates_fixed = outcome("r3", [KEY_B], {KEY_B: {"faces"}})
    other_without_faces = outcome("r4", [OTHER], {}, families={"plates"})
    assert pending_failures([first]) == {KEY_A: {"faces"}, KEY_B: {"faces", "plates"}, OTHER: {"faces"}}
    assert pending_failures([first, fixed_a, b_plates_fixed, other_without_faces]) == {
        KEY_B: {"faces"}, OTHER: {"faces"}}
    # Order matters: a failure after the fix is pending again.
    assert pending_failures([fixed_a, first]) == pending_failures([first])


def test_a_run_that_does_not_say_its_families_clears_nothing() -> None:
    first = outcome("r1", [KEY_A], {KEY_A: {"faces"}})
    unknown = outcome("r2", [KEY_A, KEY_B], {KEY_B: {"objects"}}, families=None)
    assert pending_failures([first, unknown]) == {KEY_A: {"faces"}, KEY_B: {"objects"}}


def test_only_failures_of_the_retrying_families_and_present_manifests_are_retried() -> None:
    pending = {KEY_A: {"faces"}, KEY_B: {"plates"}, OTHER: {"faces", "plates"}}
    assert manifests_to_retry(pending, families=["faces"]) == [KEY_A, OTHER]
    assert manifests_to_retry(pending, families=["faces", "plates"], present={KEY_B, OTHER}) == [OTHER, KEY_B]
    assert manifests_to_retry(pending, families=[]) == []


def test_the_launcher_takes_retry_failed_and_passes_beam_flags_on() -> None:
    args, beam_args = parse_args(["--retry-failed", "--models=faces", "--direct_num_workers=2"])
    assert args.retry_failed and args.models == "faces" and beam_args == ["--direct_num_workers=2"]
    assert not parse_args([])[0].retry_failed


def run_photos(client: Minio, catalog: str, run_id: str) -> list[str]:
    """The sha256 of every photo row run `run_id` wrote."""
    success = read_success(client, catalog, run_id)
    return sorted(sha for part in success["parts"] if part["table"] == "photos"
                  for sha in read_part(client, catalog, part).column("sha256").to_pylist())


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_retry_failed_extracts_a_failed_photo_again_once_its_family_is_fixed(
    make_settings: MakeSettings, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_faces = registry.FAMILIES["faces"]
    monkeypatch.setitem(registry.FAMILIES, "faces", POISONED_FACES)  # DirectRunner: the DoFns run in this process
    settings = make_settings("pl-evidence-retry", "pl-catalog-retry")
    client, bucket, catalog = build_client(settings.s3), settings.s3.buckets.evidence, settings.s3.buckets.catalog
    group_bytes = (shared_data / "faces/compreface_group_2faces.jpg").read_bytes()
    group = put_evidence(client, bucket, name="group", data=group_bytes)
    failing = put_evidence(client, bucket, name="failing", data=resized_jpeg(group_bytes))

    first = run_extract(settings, runner="DirectRunner", models=["faces"])
    assert (first.manifests, first.rows("photos"), first.retried) == (2, 2, None)
    assert first.metrics[f"{MODEL_FAILED}.faces"] == 1
    assert read_success(client, catalog, str(first.run_id))["families"] == ["faces"]
    assert run_extract(settings, runner="DirectRunner", models=["faces"]).manifests == 0  # default: no retry
    assert run_extract(settings, runner="DirectRunner", models=[], retry_failed=True).retried == 0  # no faces: none

    # Still broken: the photo is extracted again, fails again, and stays pending; a new upload comes along.
    later = put_evidence(client, bucket, name="later", data=(shared_data / "faces/chris_pratt.jpeg").read_bytes())
    broken = run_extract(settings, runner="DirectRunner", models=["faces"], retry_failed=True)
    assert (broken.manifests, broken.retried) == (2, 1)
    assert run_photos(client, catalog, str(broken.run_id)) == sorted([failing.sha256, later.sha256])
    assert any("of which retried" in str(cell) for cell in summary_table(broken).columns[0].cells)
    outcomes = read_run_outcomes(client, catalog, load_state(client, catalog))
    assert pending_failures(outcomes) == {failing.manifest_key: {"faces"}}

    # Fixed: its faces are found, nothing else is extracted again, and nothing is pending any more.
    monkeypatch.setitem(registry.FAMILIES, "faces", real_faces)
    fixed = run_extract(settings, runner="DirectRunner", models=["faces"], retry_failed=True)
    assert (fixed.manifests, fixed.retried, fixed.rows("dead_letters")) == (1, 1, 0)
    assert run_photos(client, catalog, str(fixed.run_id)) == [failing.sha256]
    assert pending_failures(read_run_outcomes(client, catalog, load_state(client, catalog))) == {}
    nothing = run_extract(settings, runner="DirectRunner", models=["faces"], retry_failed=True)
    assert (nothing.run_id, nothing.manifests, nothing.retried) == (None, 0, 0)

    # Readers: one row per photo, one per detection id, and the fixed photo has its faces.
    photos = read_committed(client, catalog).to_pylist()
    assert sorted(row["sha256"] for row in photos) == sorted([group.sha256, failing.sha256, later.sha256])
    fixed_photo = next(row for row in photos if row["sha256"] == failing.sha256)
    assert fixed_photo["run_id"] == fixed.run_id
    detections = read_committed(client, catalog, "detections").to_pylist()
    assert len({row["detection_id"] for row in detections}) == len(detections)
    faces = [row for row in detections if row["photo_id"] == fixed_photo["photo_id"]]
    assert len(faces) >= 2 and {row["model_name"] for row in faces} == {"faces"}
    # The failures stay on record as history; only the latest processing decides what is pending.
    letters = read_committed(client, catalog, "dead_letters").to_pylist()
    assert [row["run_id"] for row in letters if row["reason"] == MODEL_FAILED] == [broken.run_id, first.run_id]
