"""Governance over extracted photos: real witness uploads through the API, the Beam job (DirectRunner, real models)
and the published FAISS indexes, on buckets and a database of this module's own.

- The court bundle leaves the case's subjects unblurred (a face; a car and the plate on it) and every other face
  and plate pixelated, byte for byte as the bundle's own redaction of the original gives.
- Retention end to end: an expired event's detections are found by a face search, the expiry job runs with the
  clock moved past the event's retention, then the erasure follow-up: the catalog run holding the event's records
  is replaced, the (incremental) index update drops their ids and the older index versions are deleted, so the same
  search no longer finds them and no object version in the catalog bucket holds a row or an id of theirs;
  evidence, derived images and records are gone and audited, while an event under legal hold keeps everything.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from minio import Minio
from numpy.typing import NDArray
from PIL import Image
from sqlalchemy import select

from beam_jobs.extraction.decode import decode_image
from beam_jobs.pipeline.catalog import read_committed
from beam_jobs.pipeline.erasure import ErasureScope
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from indexers.catalog_index import INDEX_KINDS
from indexers.fence import Circle, Fence, TimeWindow
from indexers.index_job import IndexOutcome, index_catalog
from infra.search_cli import withdrawn_submission_ids
from infra.storage.client import ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from infra.storage.evidence import original_key
from ingest_api.db.models import Event, Position, Submission, Upload
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.bundle import catalog_facts
from ingest_api.governance.erasure import ErasureFollowUp, IndexTarget
from ingest_api.governance.policy import Role
from ingest_api.governance.redaction import Region, grown_box, pixelate_regions, redact_photo
from ingest_api.governance.retention import RetentionJob, due_at
from ingest_api.governance.tables import EventErasure
from ingest_api.services.search import SearchContext, SearchService
from ingest_api.settings import ApiSettings
from tests.indexers.real_catalog import face_crop_jpeg
from tests.ingest_api.conftest import RunningApi, api_settings, create_test_event, running_api
from tests.ingest_api.governance.erasure_checks import catalog_versions_with_rows_of, index_versions_with
from tests.ingest_api.governance.helpers import client, staff_tokens

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
MAX_PIXELS = 100_000_000
WINDOW = ("2025-03-22T14:00:00+00:00", "2025-03-22T16:00:00+00:00")
SCENE = ("faces/obama_biden_2010_group.jpg", "vehicles/br_iphone5_AZJ6991.jpg")  # the bundle's case
EXPIRING = ("faces/compreface_person_A_002.jpg", "faces/compreface_person_A_004.jpg")  # retention 30 days
HELD = ("faces/compreface_person_A_005.jpg",)  # retention 30 days, legal hold
QUERY = "compreface_person_A_006.jpg"  # person A again, never uploaded


@dataclass(frozen=True)
class Uploaded:
    event_id: str
    submission_id: str
    shas: dict[str, str]  # photo name -> sha256


@dataclass(frozen=True)
class Extracted:
    api: RunningApi
    settings: ApiSettings
    tokens: dict[Role, str]
    scene_case: str
    retention_case: str
    scene: Uploaded
    expiring: Uploaded
    held: Uploaded
    first_index: list[IndexOutcome]


def _event(investigator: httpx.Client, case_id: str, name: str, retention_days: int) -> str:
    created = investigator.post("/v1/events", json={"case_id": case_id, "name": name, "lat": 51.5007,
                                                    "lon": -0.1246, "radius_m": 500, "starts_at": WINDOW[0],
                                                    "ends_at": WINDOW[1], "retention_days": retention_days})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _upload(api: RunningApi, shared_data: Path, event_id: str, names: tuple[str, ...]) -> Uploaded:
    token, submission, shas = None, "", {}
    for name in names:
        headers: dict[str, str] = {"X-Submission-Token": token} if token else {}
        stored = httpx.post(f"{api.base_url}/v1/events/{event_id}/photos", content=(shared_data / name).read_bytes(),
                            headers=headers, timeout=120)
        assert stored.status_code == 201, stored.text
        token = token or stored.json()["submission_token"]
        submission, shas[name] = stored.json()["submission_id"], stored.json()["sha256"]
    return Uploaded(event_id, submission, shas)


def _index(settings: ApiSettings, s3: Minio) -> list[IndexOutcome]:
    """`witness index`: the committed runs in, withdrawn and erased submissions out."""
    return index_catalog(s3, settings.s3.buckets.catalog, kinds=INDEX_KINDS, work_dir=settings.state_dir / "build",
                         cache_root=settings.state_dir / "index-cache",
                         withdrawn_submission_ids=withdrawn_submission_ids(settings))


@pytest.fixture(scope="module")
def extracted(s3_settings: S3Settings, s3_client: Minio, shared_data: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Extracted]:
    tag = uuid.uuid4().hex[:8]
    buckets = BucketNames(evidence=f"gx-ev-{tag}", derived=f"gx-der-{tag}", catalog=f"gx-cat-{tag}",
                          audit=f"gx-aud-{tag}")
    settings = api_settings(s3_settings.model_copy(update={"buckets": buckets}), tmp_path_factory.mktemp("gx"))
    ensure_buckets(s3_client, settings.s3)
    with running_api(settings, create_test_event(settings)) as api:
        tokens = staff_tokens(api, "gx")
        with client(api, tokens[Role.SUPERVISOR]) as sup, client(api, tokens[Role.INVESTIGATOR]) as ines:
            cases = []
            for reference in ("gx/scene", "gx/retention"):
                case = sup.post("/v1/cases", json={"reference": reference, "title": reference}).json()
                assert sup.put(f"/v1/cases/{case['id']}/investigators/gx-investigator").status_code == 200
                cases.append(case["id"])
            scene = _upload(api, shared_data, _event(ines, cases[0], "scene", 3650), SCENE)
            expiring = _upload(api, shared_data, _event(ines, cases[1], "expiring", 30), EXPIRING)
            held = _upload(api, shared_data, _event(ines, cases[1], "held", 30), HELD)
            hold = sup.put(f"/v1/events/{held.event_id}/legal-hold", json={"reason": "order 2026/5, appeal pending"})
            assert hold.status_code == 200 and hold.json()["legal_hold"]
        job = ExtractSettings.from_mapping({"s3": settings.s3, "num_shards": 1,
                                            "extract_models": ["faces", "objects", "plates"]})
        summary = run_extract(job, runner="DirectRunner")
        assert summary.rows("photos") == len(SCENE + EXPIRING + HELD)
        yield Extracted(api, settings, tokens, cases[0], cases[1], scene, expiring, held, _index(settings, s3_client))


def _detections(s3: Minio, settings: ApiSettings, sha256: str) -> list[dict[str, Any]]:
    catalog = settings.s3.buckets.catalog
    photo_ids = {r["photo_id"] for r in read_committed(s3, catalog).to_pylist() if r["sha256"] == sha256}
    table = read_committed(s3, catalog, "detections").drop_columns(["embedding"])
    return [row for row in table.to_pylist() if row["photo_id"] in photo_ids]


def _largest(detections: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    of_kind = [d for d in detections if d["kind"] == kind]
    assert of_kind, f"no {kind} detected"
    return max(of_kind, key=lambda d: float(d["box"][2]) * float(d["box"][3]))


def _upright(data: bytes) -> NDArray[np.uint8]:
    return np.asarray(decode_image(data, max_pixels=MAX_PIXELS).image, dtype=np.uint8)


def _box_slices(box: list[float], shape: tuple[int, ...]) -> tuple[slice, slice]:
    x0, y0, x1, y1 = grown_box(Region(*box), shape[1], shape[0], 0.0) or (0, 0, 0, 0)
    return slice(y0, y1), slice(x0, x1)


def test_bundle_leaves_only_the_case_subjects_unblurred(extracted: Extracted, s3_client: Minio,
                                                        shared_data: Path) -> None:
    api, settings, case_id = extracted.api, extracted.settings, extracted.scene_case
    group, car_photo = (extracted.scene.shas[name] for name in SCENE)
    group_dets, car_dets = _detections(s3_client, settings, group), _detections(s3_client, settings, car_photo)
    faces = sorted((d for d in group_dets if d["kind"] == "face"), key=lambda d: float(d["box"][0]))
    assert len(faces) == 2  # MANIFEST: Obama (left) and Biden (right)
    subject_face, bystander_face = faces
    car = _largest(car_dets, "vehicle")
    plates = [d for d in car_dets if d["kind"] == "plate"]
    assert plates and json.loads(str(plates[0]["attributes"]))["plate_text"] == "AZJ6991"

    with client(api, extracted.tokens[Role.INVESTIGATOR]) as ines, client(api, extracted.tokens[Role.AUDITOR]) as au:
        marked = ines.put(f"/v1/cases/{case_id}/subjects/{subject_face['detection_id']}", json={"note": "suspect"})
        assert marked.status_code == 200, marked.text
        assert marked.json()["kind"] == "face" and marked.json()["photo_sha256"] == group
        assert ines.put(f"/v1/cases/{case_id}/subjects/{car['detection_id']}").status_code == 200
        # a plate is marked, then unmarked: the car's plate stays readable anyway, as part of the subject car
        assert ines.put(f"/v1/cases/{case_id}/subjects/{plates[0]['detection_id']}").status_code == 200
        left = ines.delete(f"/v1/cases/{case_id}/subjects/{plates[0]['detection_id']}")
        assert left.status_code == 200 and len(left.json()) == 2
        assert ines.put(f"/v1/cases/{case_id}/subjects/no-such-detection").status_code == 404
        other_case = extracted.expiring.shas[EXPIRING[0]]  # a face of the other case's event
        other_face = _largest(_detections(s3_client, settings, other_case), "face")
        assert ines.put(f"/v1/cases/{case_id}/subjects/{other_face['detection_id']}").status_code == 404
        assert ines.delete(f"/v1/cases/{case_id}/subjects/{bystander_face['detection_id']}").status_code == 404
        listed = ines.get(f"/v1/cases/{case_id}/subjects").json()
        assert [s["detection_id"] for s in listed] == [subject_face["detection_id"], car["detection_id"]]
        response = ines.get(f"/v1/cases/{case_id}/export")
        assert response.status_code == 200, response.text
        audited = [e["action"] for e in au.get("/v1/audit", params={"case_id": case_id}).json()["entries"]]
    assert audited.count("case_subject_mark") == 3 and audited.count("case_subject_unmark") == 1

    archive = zipfile.ZipFile(io.BytesIO(response.content))
    sums = {name: digest for digest, name in (line.split("  ", 1)
                                              for line in archive.read("SHA256SUMS").decode().splitlines())}
    assert set(sums) == set(archive.namelist()) - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
    document = json.loads(archive.read("case.json"))
    assert [(s["detection_id"], s["kind"], s["note"]) for s in document["subjects"]] == [
        (subject_face["detection_id"], "face", "suspect"), (car["detection_id"], "vehicle", None)]
    facts = catalog_facts(s3_client, settings.s3.buckets.catalog, {extracted.scene.event_id},
                          frozenset(s["detection_id"] for s in document["subjects"]))
    for sha, name in ((group, SCENE[0]), (car_photo, SCENE[1])):
        data = (shared_data / name).read_bytes()
        bundled = archive.read(f"redacted/{sha}.jpg")
        assert bundled == redact_photo(data, facts.regions[sha], keep=facts.keep[sha], max_pixels=MAX_PIXELS)
        with Image.open(io.BytesIO(bundled)) as image:
            assert not image.getexif() and "exif" not in image.info and b"Exif\x00\x00" not in bundled
        original = _upright(data)
        pixels = pixelate_regions(original, facts.regions[sha], keep=facts.keep[sha])
        decoded = np.asarray(Image.open(io.BytesIO(bundled)).convert("RGB"), dtype=np.int16)
        kept = [subject_face] if sha == group else [car, *plates]
        for detection in kept:  # the subject exactly as decoded; the JPEG copy within re-encoding noise
            rows, cols = _box_slices(detection["box"], original.shape)
            assert np.array_equal(pixels[rows, cols], original[rows, cols]), detection["kind"]
            assert np.abs(decoded[rows, cols] - original[rows, cols]).mean() < 3, detection["kind"]
        blurred = [bystander_face] if sha == group else []
        blurred += [d for d in (group_dets if sha == group else car_dets)
                    if d["kind"] in ("face", "plate") and d["detection_id"] not in {k["detection_id"] for k in kept}]
        for detection in {d["detection_id"]: d for d in blurred}.values():
            rows, cols = _box_slices(detection["box"], original.shape)
            assert np.abs(pixels[rows, cols].astype(np.int16) - original[rows, cols]).mean() > 4, detection
            assert np.abs(decoded[rows, cols] - original[rows, cols]).mean() > 4, detection
    assert facts.regions[group] and facts.keep[group] and len(facts.keep[car_photo]) == 1


@dataclass(frozen=True)
class EventRecords:
    photo_ids: frozenset[str]
    detection_ids: frozenset[str]
    derived_keys: frozenset[str]


def _records(s3: Minio, settings: ApiSettings, uploaded: Uploaded) -> EventRecords:
    """The event's committed catalog records: photo and detection ids, thumbnail and crop keys."""
    photos = [r for r in read_committed(s3, settings.s3.buckets.catalog).to_pylist()
              if r["event_id"] == uploaded.event_id]
    detections = [d for sha in uploaded.shas.values() for d in _detections(s3, settings, sha)]
    return EventRecords(frozenset(str(r["photo_id"]) for r in photos),
                        frozenset(str(d["detection_id"]) for d in detections),
                        frozenset([str(r["thumbnail_key"]) for r in photos]
                                  + [str(d["crop_key"]) for d in detections if d["crop_key"]]))


def _versions(s3: Minio, bucket: str, key: str) -> int:
    return sum(1 for item in s3.list_objects(bucket, prefix=key, include_version=True) if item.object_name == key)


def test_expiry_removes_an_event_from_the_faiss_index(extracted: Extracted, s3_client: Minio,
                                                      shared_data: Path) -> None:
    settings, buckets = extracted.settings, extracted.settings.s3.buckets
    assert {o.kind: o.action for o in extracted.first_index}["face"] == "built"
    search = SearchService.from_settings(settings.s3, client=s3_client, state_dir=settings.state_dir / "search")
    fence = Fence(area=Circle(51.5007, -0.1246, 500), window=TimeWindow(datetime.fromisoformat(WINDOW[0]),
                                                                        datetime.fromisoformat(WINDOW[1])),
                  include_unplaced=True, include_untimed=True)
    query = face_crop_jpeg(shared_data, QUERY)

    def person_a() -> dict[str, set[str]]:
        search.refresh()
        found = search.by_image("face", query, fence=fence, k=10, context=SearchContext(extracted.retention_case))
        by_event: dict[str, set[str]] = {}
        for hit in found.hits:
            if hit.score > 0.5:  # SFace: the same person scores well above 0.5, others below
                by_event.setdefault(str(hit.event_id), set()).add(hit.detection_id)
        return by_event

    expiring_ids = {str(d["detection_id"]) for sha in extracted.expiring.shas.values()
                    for d in _detections(s3_client, settings, sha) if d["kind"] == "face"}
    expiring_records, held_records = _records(s3_client, settings, extracted.expiring), _records(
        s3_client, settings, extracted.held)
    before = person_a()
    assert before[extracted.expiring.event_id] <= expiring_ids and len(before[extracted.expiring.event_id]) == 2
    assert len(before[extracted.held.event_id]) == 1

    engine = build_engine(settings.effective_database_url)
    sessions, audit = session_factory(engine), AuditLog(engine)
    job = RetentionJob(client=s3_client, buckets=buckets, sessions=sessions, audit=audit)
    with sessions() as session:
        due = due_at(session.get_one(Event, extracted.expiring.event_id))
    assert job.run(now=due - timedelta(days=1), dry_run=True) == []  # the day before: nothing is due
    outcomes = {o.event_id: o for o in job.run(now=due + timedelta(days=1))}
    assert set(outcomes) == {extracted.expiring.event_id, extracted.held.event_id}  # the scene's 10 years are not up
    erased, held = outcomes[extracted.expiring.event_id], outcomes[extracted.held.event_id]
    assert erased.status == "erased" and sorted(erased.originals) == sorted(extracted.expiring.shas.values())
    assert erased.manifests == 2 and erased.derived >= 4  # two thumbnails, at least one face crop each
    assert held.status == "held"

    # `witness expire` goes on: catalog records, index entries, old index versions (what `witness index` would do)
    follow_up = ErasureFollowUp(client=s3_client, buckets=buckets, sessions=sessions, audit=audit,
                                index=IndexTarget(settings.state_dir / "build", settings.state_dir / "index-cache"))
    report = follow_up.run(actor="cli:ops", role="operator")
    assert report.failed == [] and report.pending == []
    assert report.catalog is not None and len(report.catalog.replaced) == 1  # the one run (one shard) held them
    assert report.catalog.rows_removed["photos"] == 2
    assert report.catalog.rows_removed["detections"] == len(expiring_records.detection_ids)
    again = {o.kind: o for o in report.index}
    assert again["face"].action == "updated" and again["face"].removed_photos == 2
    assert extracted.first_index[0].version in {v for o in report.pruned for v in o.deleted_versions}
    # a server that has not swapped yet keeps answering from the version it holds in memory, deleted or not
    stale = search.by_image("face", query, fence=fence, k=10, context=SearchContext(extracted.retention_case))
    assert expiring_ids & {hit.detection_id for hit in stale.hits}
    after = person_a()
    assert extracted.expiring.event_id not in after and after[extracted.held.event_id] == before[
        extracted.held.event_id]
    served = search._served("face").data.meta.detection_id.tolist()  # the index file itself, not just the results
    assert not expiring_ids & set(served) and before[extracted.held.event_id] <= set(served)
    cached = settings.state_dir / "search" / "index-cache" / "face"
    assert [path.name for path in cached.iterdir()] == [search.versions["face"]]

    # nothing of the erased event in any object version of the catalog bucket; the held event intact
    gone = ErasureScope(event_ids=frozenset({extracted.expiring.event_id}),
                        photo_ids=frozenset(expiring_records.photo_ids))
    assert catalog_versions_with_rows_of(s3_client, buckets.catalog, gone) == []
    assert index_versions_with(s3_client, buckets.catalog, expiring_records.detection_ids) == []
    assert _records(s3_client, settings, extracted.held) == held_records
    assert index_versions_with(s3_client, buckets.catalog, before[extracted.held.event_id])  # the check sees ids
    for key in expiring_records.derived_keys:
        assert _versions(s3_client, buckets.derived, key) == 0, key

    for sha in extracted.expiring.shas.values():
        assert _versions(s3_client, buckets.evidence, original_key(sha)) == 0
    for sha in extracted.held.shas.values():
        assert _versions(s3_client, buckets.evidence, original_key(sha)) == 1
    for row in read_committed(s3_client, buckets.catalog).to_pylist():
        derived = [str(row["thumbnail_key"])] + [str(d["crop_key"]) for d in _detections(s3_client, settings,
                                                                                          str(row["sha256"]))]
        assert sum(_versions(s3_client, buckets.derived, key) for key in derived) == len(derived), row["photo_id"]
    with sessions() as session:
        assert session.get(EventErasure, extracted.expiring.event_id) is not None
        assert session.get(EventErasure, extracted.held.event_id) is None
        uploads = session.scalars(select(Upload).join(Submission, Submission.id == Upload.submission_id)
                                  .where(Submission.event_id == extracted.expiring.event_id)).all()
        assert len(uploads) == 2 and all(u.withdrawn_at is not None for u in uploads)
        assert session.scalars(select(Position).where(
            Position.submission_id == extracted.expiring.submission_id)).all() == []
    entries = audit.entries()
    expired = [e for e in entries if e.action == "expire"]
    assert len(expired) == 1 and sorted(expired[0].result_ids) == sorted(extracted.expiring.shas.values())
    assert json.loads(expired[0].parameters)["event_id"] == extracted.expiring.event_id
    assert [json.loads(e.parameters)["event_id"] for e in entries if e.action == "expire_held"] == [
        extracted.held.event_id]
    steps = [e for e in entries if e.action.startswith("erase_")]
    assert [e.action for e in steps] == ["erase_catalog", "erase_index", "erase_index_versions"]
    assert list(json.loads(steps[0].parameters)["replaced_runs"]) == list(report.catalog.replaced)
    # a re-run finds nothing left to do, and audits nothing
    rerun = follow_up.run(actor="cli:ops", role="operator")
    assert rerun.catalog is not None and rerun.catalog.replaced == {} and not rerun.failed and not rerun.pending
    assert {o.action for o in rerun.index} <= {"unchanged", "empty"} and len(audit.entries()) == len(entries)
    engine.dispose()
