"""Case subjects on a migrated SQLite store over a committed catalog run in the real S3 server: who may mark,
what may be marked, and the audit trail; migration 0006 matches the table model."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from minio import Minio
from sqlalchemy import Engine, inspect

from beam_jobs.pipeline.catalog import commit_run, run_prefix
from beam_jobs.pipeline.sinks import PARQUET_TYPE, PartInfo, parquet_bytes, part_key
from infra.storage.objects import store_bytes
from ingest_api.db.migrate import alembic_config, upgrade
from ingest_api.db.models import Base, Event
from ingest_api.governance.auth import Governance
from ingest_api.governance.policy import PermissionDenied, Principal, Role
from ingest_api.governance.staff import SYSTEM, GovernanceConflict, GovernanceNotFound
from ingest_api.governance.subjects import CaseSubjects
from tests.indexers.real_catalog import T0, photo_id, photo_rows, synthetic_detections

SUPERVISOR = Principal("sam", Role.SUPERVISOR)


def test_migration_0006_matches_the_model_and_downgrades(migrated: Engine) -> None:
    with migrated.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # every table of the models as migrated (audit_entries keeps its own MetaData, so it is the only "extra")
    assert [d for d in differences if "audit_entries" not in repr(d)] == []
    assert "case_subjects" in inspect(migrated).get_table_names()
    url = migrated.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(url), "0005")
    assert "case_subjects" not in inspect(migrated).get_table_names()
    upgrade(url)
    assert "case_subjects" in inspect(migrated).get_table_names()


def _commit(s3: Minio, bucket: str, event_id: str) -> None:
    """One committed run: photos `a`, `b` of `event_id` (faces det-a, det-b) and photo `c` of another event (a
    person, det-c), laid out as the extraction job writes them."""
    photos = photo_rows(["a", "b", "c"], run_id="r1")
    photos = photos.set_column(photos.schema.get_field_index("event_id"), "event_id",
                               pa.array([event_id, event_id, "elsewhere"], pa.string()))
    detections = pa.concat_tables([synthetic_detections(["a", "b"], seed=1), synthetic_detections(["c"], seed=2,
                                                                                                    kind="person")])
    parts = []
    for table, data in (("photos", photos), ("detections", detections)):
        key = part_key(run_prefix("r1"), table, 0)
        parts.append(PartInfo(table, key, data.num_rows,
                              store_bytes(s3, bucket, key, parquet_bytes(data), PARQUET_TYPE).sha256))
    commit_run(s3, bucket, "r1", parts=parts, manifests=["m1"], extracted_by="test")


@pytest.mark.integration
def test_marking_subjects(governance: Governance, s3_client: Minio) -> None:
    catalog = f"subjects-{uuid.uuid4().hex[:8]}"
    s3_client.make_bucket(catalog)
    sessions = governance.cases.sessions
    with sessions() as session:
        session.add(Event(id="ev-scene", name="scene", lat=1, lon=2, radius_m=10, starts_at=T0,
                          ends_at=T0 + timedelta(hours=1), created_at=datetime.now(UTC)))
        session.commit()
    _commit(s3_client, catalog, "ev-scene")
    governance.staff.create(actor=SYSTEM, username="ines", role=Role.INVESTIGATOR)
    case = governance.cases.create(actor=SUPERVISOR, reference="s/1", title="subjects")
    governance.cases.assign(actor=SUPERVISOR, case_id=case.id, username="ines")
    governance.cases.link_event(actor=SUPERVISOR, case_id=case.id, event_id="ev-scene")
    ines = Principal("ines", Role.INVESTIGATOR, frozenset({case.id}))
    subjects = CaseSubjects(sessions=sessions, audit=governance.audit, client=s3_client, catalog_bucket=catalog)

    marked = subjects.mark(actor=ines, case_id=case.id, detection_id="det-a", note="the suspect")
    assert (marked.kind, marked.photo_id, marked.marked_by) == ("face", photo_id("a"), "ines")
    again = subjects.mark(actor=ines, case_id=case.id, detection_id="det-a", note="the suspect, hat")
    assert again.note == "the suspect, hat" and again.marked_at == marked.marked_at  # idempotent, note replaced
    subjects.mark(actor=SUPERVISOR, case_id=case.id, detection_id="det-b")
    assert [s.detection_id for s in subjects.listed(actor=ines, case_id=case.id)] == ["det-a", "det-b"]

    with pytest.raises(GovernanceNotFound):
        subjects.mark(actor=ines, case_id=case.id, detection_id="det-c")  # a photo of an event not in the case
    with pytest.raises(GovernanceNotFound):
        subjects.mark(actor=ines, case_id=case.id, detection_id="det-nowhere")
    governance.cases.link_event(actor=SUPERVISOR, case_id=case.id, event_id=_other_event(governance))
    with pytest.raises(GovernanceConflict, match="is a person"):
        subjects.mark(actor=ines, case_id=case.id, detection_id="det-c")  # in the case now, but not a subject kind
    outsider = Principal("olga", Role.INVESTIGATOR, frozenset({"another-case"}))
    for denied in (lambda: subjects.mark(actor=outsider, case_id=case.id, detection_id="det-b"),
                   lambda: subjects.listed(actor=outsider, case_id=case.id),
                   lambda: subjects.unmark(actor=Principal("al", Role.AUDITOR), case_id=case.id, detection_id="det-a")):
        with pytest.raises(PermissionDenied):
            denied()
    assert [s.detection_id for s in subjects.unmark(actor=ines, case_id=case.id, detection_id="det-b")] == ["det-a"]
    with pytest.raises(GovernanceNotFound):
        subjects.unmark(actor=ines, case_id=case.id, detection_id="det-b")

    trail = [(e.action, e.actor, list(e.result_ids)) for e in governance.audit.entries_for_case(case.id)
             if e.action.startswith("case_subject")]
    assert trail == [("case_subject_mark", "ines", ["det-a"]), ("case_subject_mark", "ines", ["det-a"]),
                     ("case_subject_mark", "sam", ["det-b"]), ("case_subjects_view", "ines", []),
                     ("case_subject_unmark", "ines", ["det-b"])]
    first = next(e for e in governance.audit.entries_for_case(case.id) if e.action == "case_subject_mark")
    assert json.loads(first.parameters) == {"kind": "face", "photo_id": photo_id("a"), "note": "the suspect"}


def _other_event(governance: Governance) -> str:
    with governance.cases.sessions() as session:
        session.add(Event(id="elsewhere", name="other", lat=1, lon=2, radius_m=10, starts_at=T0,
                          ends_at=T0 + timedelta(hours=1), created_at=datetime.now(UTC)))
        session.commit()
    return "elsewhere"
