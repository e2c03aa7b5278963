"""`witness index` then `witness search plates` against a real S3 server and a committed extraction run."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from minio import Minio
from typer.testing import CliRunner

from beam_jobs.pipeline.catalog import commit_run, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from infra.cli import app
from infra.storage.config import S3Settings
from infra.storage.objects import store_bytes
from tests.indexers.real_catalog import INCIDENT, T0, plate_catalog

pytestmark = pytest.mark.integration


def test_index_then_search_plates(s3_settings: S3Settings, s3_client: Minio, manifest: dict[str, dict[str, str]],
                                  tmp_path: Path) -> None:
    catalog = f"cli-cat-{uuid.uuid4().hex[:8]}"
    s3_client.make_bucket(catalog)
    detections, photos = plate_catalog(manifest, run_id="r1")
    parts = []
    for table, data in (("photos", photos), ("detections", detections)):
        key = part_key(run_prefix("r1"), table, 0)
        parts.append(PartInfo(table, key, data.num_rows, store_bytes(s3_client, catalog, key, parquet_bytes(data),
                                                                     PARQUET_TYPE).sha256))
    commit_run(s3_client, catalog, "r1", parts=parts, manifests=["m1"], extracted_by="test")
    env = {"WITNESS_STATE_DIR": str(tmp_path), "WITNESS_S3__ENDPOINT": s3_settings.endpoint,
           "WITNESS_S3__BUCKETS__CATALOG": catalog, "WITNESS_S3__BUCKETS__DERIVED": catalog}
    runner = CliRunner()
    built = runner.invoke(app, ["index", "--kind", "plate"], env=env)
    assert built.exit_code == 0, built.output
    assert "built" in built.output
    again = runner.invoke(app, ["index", "--kind", "plate"], env=env)
    assert again.exit_code == 0 and "unchanged" in again.output, again.output
    fence = ["--lat", str(INCIDENT[0]), "--lon", str(INCIDENT[1]), "--radius-m", "1000", "--start", T0.isoformat(),
             "--end", T0.replace(hour=16).isoformat(), "--exclude-unplaced", "--exclude-untimed"]
    found = runner.invoke(app, ["search", "plates", "BA3O2OZ", *fence], env=env)
    assert found.exit_code == 0, found.output
    assert "photo-eu_sk_BA302OZ" in found.output
    unfenced = runner.invoke(app, ["search", "plates", "BA3O2OZ", "--start", T0.isoformat(), "--end",
                                   T0.replace(hour=16).isoformat(), "--exclude-unplaced", "--exclude-untimed"], env=env)
    assert unfenced.exit_code != 0


def test_withdrawn_and_erased_submissions_leave_the_index(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from infra.search_cli import withdrawn_submission_ids
    from ingest_api.db import repository
    from ingest_api.db.session import build_engine, session_factory
    from ingest_api.governance.tables import EventErasure
    from ingest_api.settings import ApiSettings

    settings = ApiSettings.from_mapping({"state_dir": tmp_path})
    withdrawn_submission_ids(settings)  # migrates the empty database
    engine = build_engine(settings.effective_database_url)
    now = datetime.now(UTC)
    with session_factory(engine)() as session:
        kept, erased = (repository.create_event(session=session, name=name, lat=1, lon=2, radius_m=10, starts_at=now,
                                                ends_at=now + timedelta(hours=1)) for name in ("kept", "erased"))
        live = repository.create_submission(session=session, event_id=kept.id).submission
        withdrawn = repository.create_submission(session=session, event_id=kept.id).submission
        of_erased = repository.create_submission(session=session, event_id=erased.id).submission
        session.get_one(type(withdrawn), withdrawn.id).withdrawn_at = now
        session.add(EventErasure(event_id=erased.id, erased_at=now, summary="{}"))
        session.commit()
        expected = {withdrawn.id, of_erased.id}
        assert live.id not in expected
    engine.dispose()
    assert withdrawn_submission_ids(settings) == expected
