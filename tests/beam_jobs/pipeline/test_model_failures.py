"""A model family raising on a photo through the real job (DirectRunner, real S3): the run commits, the photo
keeps its row and thumbnail, the failure is a committed `model_failed` dead letter, and erasure still balances.

The poisoned family is the real face family injected through `registry.FAMILIES` (see `poisoned_family`).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image

from beam_jobs.models import registry
from beam_jobs.models.faces import FaceFamily
from beam_jobs.pipeline.catalog import input_rows, load_state, read_committed
from beam_jobs.pipeline.erasure import ErasureScope, erase_from_catalog
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from beam_jobs.records import DEAD_LETTER_SCHEMA, MODEL_FAILED
from infra.storage.client import build_client
from infra.storage.objects import read_bytes

from .conftest import put_evidence
from .poisoned_family import POISONED_FACES, poison_jpeg, strip_jpeg

EVIDENCE = "pl-evidence-poison"
GROUP = "faces/compreface_group_2faces.jpg"
MakeSettings = Callable[[str, str], ExtractSettings]


def test_input_rows_leaves_out_model_failures_whose_photo_row_counts() -> None:
    letters = pa.Table.from_pylist([
        {"object_key": "a", "sha256": None, "reason": "corrupt", "detail": "d", "run_id": "r"},
        {"object_key": "b", "sha256": None, "reason": MODEL_FAILED, "detail": "faces v: error", "run_id": "r"},
        {"object_key": "b", "sha256": None, "reason": MODEL_FAILED, "detail": "plates v: error", "run_id": "r"},
    ], schema=DEAD_LETTER_SCHEMA)
    assert input_rows("dead_letters", letters) == 1
    assert input_rows("photos", pa.table({"photo_id": ["x", "y"]})) == 2
    assert input_rows("detections", pa.table({"detection_id": ["z"]})) == 0


@pytest.mark.integration
@pytest.mark.timeout(240)
def test_a_poisoned_photo_does_not_fail_the_run(make_settings: MakeSettings, shared_data: Path,
                                                random_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.FAMILIES, "faces", POISONED_FACES)  # DirectRunner: the DoFns run in this process
    settings = make_settings(EVIDENCE, "pl-catalog-poison")
    client, bucket, catalog = build_client(settings.s3), settings.s3.buckets.evidence, settings.s3.buckets.catalog
    group = put_evidence(client, bucket, name="group", data=(shared_data / GROUP).read_bytes())
    poison = put_evidence(client, bucket, name="poison", data=poison_jpeg())
    strip = put_evidence(client, bucket, name="strip", data=strip_jpeg())  # 4000x1: it once crashed the real faces
    put_evidence(client, bucket, name="random", data=random_bytes)  # a refusal, to check the accounting

    summary = run_extract(settings, runner="DirectRunner", models=["faces"])
    assert summary.run_id is not None  # verified and committed
    assert (summary.manifests, summary.rows("photos"), summary.rows("dead_letters")) == (4, 3, 2)
    metrics = summary.metrics
    assert metrics[MODEL_FAILED] == metrics[f"{MODEL_FAILED}.faces"] == 1
    assert (metrics["photos"], metrics["rejected"]) == (3, 1)

    photos = {row["sha256"]: row for row in read_committed(client, catalog).to_pylist()}
    assert set(photos) == {group.sha256, poison.sha256, strip.sha256}
    thumb = Image.open(io.BytesIO(read_bytes(client, settings.s3.buckets.derived,
                                             str(photos[poison.sha256]["thumbnail_key"]))))
    assert thumb.size == (97, 61) and thumb.format == "JPEG"
    detections = read_committed(client, catalog, "detections").to_pylist()
    by_photo = {row["photo_id"]: [d for d in detections if d["photo_id"] == row["photo_id"]]
                for row in photos.values()}
    assert len(by_photo[photos[group.sha256]["photo_id"]]) >= 2  # the other photos keep their detections
    assert by_photo[photos[poison.sha256]["photo_id"]] == []  # (what YuNet sees in the noise strip varies by machine)

    failed = {row["sha256"]: row for row in read_committed(client, catalog, "dead_letters").to_pylist()
              if row["reason"] == MODEL_FAILED}
    assert set(failed) == {poison.sha256}
    version = FaceFamily().version
    assert failed[poison.sha256]["detail"] == f"faces {version}: error: injected: this family cannot read a 97x61 photo"
    assert failed[poison.sha256]["manifest_key"] == poison.manifest_key
    assert failed[poison.sha256]["object_key"] == photos[poison.sha256]["object_key"]

    again = run_extract(settings, runner="DirectRunner", models=["faces"])
    assert again.manifests == 0  # processed: the failure is recorded, not retried on every launch

    # Erasure re-verifies the redacted run with the same accounting: the photo and its failure go together.
    outcome = erase_from_catalog(client, catalog_bucket=catalog, derived_bucket=settings.s3.buckets.derived,
                                 scope=ErasureScope(submission_ids=frozenset({photos[poison.sha256]["submission_id"]})))
    assert dict(outcome.rows_removed) == {"photos": 1, "dead_letters": 1, "detections": 0}
    assert len(load_state(client, catalog).runs) == 1
    left = read_committed(client, catalog, "dead_letters").to_pylist()
    assert [row["reason"] for row in left] == ["unsupported_format"]
