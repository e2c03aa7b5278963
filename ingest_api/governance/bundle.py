"""The court bundle of a case: one zip a court, the defence or an expert can check without our systems.

    witness export CASE_ID [--out bundle.zip]        # or GET /v1/cases/{id}/export (EXPORT_CASE)

    SHA256SUMS                       `sha256sum -c` format, every other file of the bundle
    README.txt                       what follows, for whoever opens the zip
    case.json                        case, events, submissions and uploads (sha256, size, object version),
                                     the case's subjects and which key signed each receipt
    originals/<sha256>.<ext>         the witnesses' bytes, unchanged (their SHA-256 is their name)
    manifests/<event>/<submission>/<sha256>.json   the ingest manifests exactly as stored (receipts of arrival)
    receipts/<submission>.json       each submission's signed receipt, byte for byte what its witness downloads
    redacted/<sha256>.jpg            viewing copies: faces and plates pixelated unless they are the case's subject
                                     (or a plate on a subject vehicle), re-encoded without EXIF
    audit/entries.jsonl              the case's audit entries with their hashes (the export's own entry included)
    searches.json                    exact parameters of every search made for the case, to re-run them
    models.json                      extraction code and model names/versions from the catalog, when extracted

The bundle is written to `<out>.part` and renamed, so a crash leaves no truncated zip under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from minio import Minio
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from beam_jobs.pipeline.catalog import read_committed
from infra.storage.config import BucketNames
from infra.storage.objects import read_bytes
from ingest_api.db.models import Event, Submission, Upload
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import case_event_ids
from ingest_api.governance.redaction import Detected, Region, bystander_regions, redact_photo
from ingest_api.governance.staff import GovernanceNotFound, as_utc
from ingest_api.governance.subjects import SubjectView, subjects_of
from ingest_api.governance.tables import Case
from ingest_api.services import receipts

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/heic": ".heic",
              "image/heif": ".heif"}
BUNDLE_FORMAT = "witness-court-bundle/2"
README = """Court bundle of a Witness case ({format}).

Integrity: `sha256sum -c SHA256SUMS` checks every file. The originals are named by their SHA-256, which the
witnesses' receipts and the ingest manifests also state.

Receipts (receipts/<submission>.json) are the exact bytes a witness downloads from the service. Each carries
`signature`: HMAC-SHA256, hex, keyed with the service's receipt key named by `key_id` (listed in case.json), over
the receipt without its `signature` member, written as JSON with keys sorted, no whitespace (separators "," and
":"), non-ASCII characters as UTF-8. The key itself is not in this bundle: the operator holding it (or an expert
given it under the court's order) recomputes the HMAC; a receipt a witness produces from their own copy is checked
the same way and, if nothing changed since, is byte for byte the one here.

Redacted copies (redacted/) pixelate every detected face and plate except the case's subjects (case.json
`subjects`, named by investigators, each mark audited) and plates lying inside a subject vehicle.
audit/entries.jsonl chains each entry to the previous one by SHA-256 (see `witness audit verify`).
"""


class BundleIntegrityError(RuntimeError):
    """An original read back from the evidence store does not hash to its recorded SHA-256."""


@dataclass(frozen=True)
class BundleSummary:
    path: Path
    case_id: str
    originals: int
    sha256: str  # of the zip file


@dataclass(frozen=True)
class CatalogFacts:
    models: dict[str, Any]
    regions: dict[str, list[Region]]  # original sha256 -> boxes to pixelate
    keep: dict[str, list[Region]]  # original sha256 -> subjects' boxes, left as they are


def _photo_regions(found: list[Detected], subject_ids: frozenset[str]) -> tuple[list[Region], list[Region]]:
    """Redaction of one original. Identical bytes sent twice are two catalog photos whose detections differ only by
    id: a box marked in either is the subject in both."""
    marked = {(d.kind, d.region) for d in found if d.detection_id in subject_ids}
    subjects = {d.detection_id for d in found if (d.kind, d.region) in marked}
    unique = list({(d.kind, d.region): d for d in found}.values())
    return bystander_regions(unique, subjects)


def catalog_facts(client: Minio, catalog_bucket: str, event_ids: set[str],
                  subject_ids: frozenset[str] = frozenset()) -> CatalogFacts:
    """Model and code versions, and the boxes to pixelate and to keep of the case's photos as the extraction job
    recorded them."""
    photos = read_committed(client, catalog_bucket, "photos").to_pylist()
    photos = [row for row in photos if row["event_id"] in event_ids]
    sha_of = {row["photo_id"]: row["sha256"] for row in photos}
    detections: list[dict[str, Any]] = []
    if sha_of:
        table = read_committed(client, catalog_bucket, "detections")
        wanted = pc.is_in(table.column("photo_id"), value_set=pa.array(sorted(sha_of)))
        detections = table.filter(wanted).drop_columns(["embedding"]).to_pylist()
    found: dict[str, list[Detected]] = {}
    for row in detections:
        x, y, w, h = row["box"]
        found.setdefault(sha_of[row["photo_id"]], []).append(Detected(row["detection_id"], row["kind"],
                                                                      Region(x, y, w, h)))
    regions: dict[str, list[Region]] = {}
    keep: dict[str, list[Region]] = {}
    for sha, of_photo in found.items():
        regions[sha], keep[sha] = _photo_regions(of_photo, subject_ids)
    models = {
        "extracted_by": sorted({str(row["extracted_by"]) for row in photos}),
        "detection_models": sorted({f"{row['model_name']} {row['model_version']}" for row in detections}),
        "extraction_runs": sorted({str(row["run_id"]) for row in photos}),
        "photos_extracted": len(photos),
    }
    return CatalogFacts(models, regions, keep)


def _json(value: Any) -> bytes:
    return (json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def _utc(moment: datetime | None) -> str | None:
    return None if moment is None else as_utc(moment).isoformat()


def _subject(view: SubjectView) -> dict[str, Any]:
    return {"detection_id": view.detection_id, "kind": view.kind, "photo_id": view.photo_id,
            "original": view.photo_sha256, "note": view.note, "marked_by": view.marked_by,
            "marked_at": _utc(view.marked_at)}


@dataclass(frozen=True)
class CaseBundler:
    client: Minio
    buckets: BucketNames
    sessions: sessionmaker[Session]
    audit: AuditLog
    max_pixels: int
    receipt_of: Callable[[str], dict[str, Any]]  # submission id -> its signed receipt (SubmissionService.receipt_of)

    def _inventory(self, session: Session, case_id: str) -> tuple[Case, list[Event], list[tuple[Submission, Upload]]]:
        case = session.get(Case, case_id)
        if case is None:
            raise GovernanceNotFound(f"no case {case_id!r}")
        event_ids = case_event_ids(session, case_id)
        events = list(session.scalars(select(Event).where(Event.id.in_(event_ids)).order_by(Event.id)))
        rows = session.execute(
            select(Submission, Upload).join(Upload, Upload.submission_id == Submission.id)
            .where(Submission.event_id.in_(event_ids), Upload.withdrawn_at.is_(None))
            .order_by(Submission.id, Upload.sha256)
        )
        return case, events, [(submission, upload) for submission, upload in rows]

    def write(self, *, case_id: str, actor: str, role: str, out: Path) -> BundleSummary:
        with self.sessions() as session:
            case, events, uploads = self._inventory(session, case_id)
            subjects = subjects_of(session, case_id)
        event_ids = {event.id for event in events}
        shas = sorted({upload.sha256 for _, upload in uploads})
        submission_ids = sorted({submission.id for submission, _ in uploads})
        self.audit.append(AuditRecord(actor=actor, role=role, action="export", case_id=case_id,
                                      parameters={"events": sorted(event_ids), "file": out.name,
                                                  "subjects": [s.detection_id for s in subjects]},
                                      result_ids=shas))
        facts = catalog_facts(self.client, self.buckets.catalog, event_ids,
                              frozenset(s.detection_id for s in subjects))
        signed = {submission_id: self.receipt_of(submission_id) for submission_id in submission_ids}
        entries = self.audit.entries_for_case(case_id)
        document = {
            "format": BUNDLE_FORMAT,
            "generated_at": datetime.now(UTC).isoformat(),
            "generated_by": {"actor": actor, "role": role},
            "case": {"id": case.id, "reference": case.reference, "title": case.title, "created_by": case.created_by,
                     "created_at": _utc(case.created_at)},
            "events": [{"id": e.id, "name": e.name, "lat": e.lat, "lon": e.lon, "radius_m": e.radius_m,
                        "starts_at": _utc(e.starts_at), "ends_at": _utc(e.ends_at),
                        "retention_days": e.retention_days} for e in events],
            "uploads": [{"submission_id": s.id, "event_id": s.event_id, "sha256": u.sha256, "size": u.size,
                         "media_type": u.media_type, "received_at": _utc(u.received_at),
                         "object_key": u.object_key, "object_version": u.object_version,
                         "manifest_key": u.manifest_key, "original": self._original_name(u)} for s, u in uploads],
            "subjects": [_subject(s) for s in subjects],
            "receipts": {submission_id: {"file": f"receipts/{submission_id}.json",
                                         "alg": receipt["signature"]["alg"], "key_id": receipt["signature"]["key_id"]}
                         for submission_id, receipt in signed.items()},
            "audit_head": {"seq": entries[-1].seq, "hash": entries[-1].hash} if entries else None,
        }
        searches = [{"seq": e.seq, "at": e.at, "actor": e.actor, "parameters": json.loads(e.parameters),
                     "result_ids": list(e.result_ids)} for e in entries if e.action == "search"]
        partial = out.with_name(out.name + ".part")
        out.parent.mkdir(parents=True, exist_ok=True)
        sums: list[str] = []
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            def put(name: str, data: bytes, stored: bool = False) -> None:
                archive.writestr(name, data, compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
                sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")

            put("README.txt", README.format(format=BUNDLE_FORMAT).encode())
            put("case.json", _json(document))
            for submission_id, receipt in signed.items():
                put(f"receipts/{submission_id}.json", receipts.render(receipt))
            for name, data, stored in self._evidence(uploads, facts):
                put(name, data, stored)
            put("audit/entries.jsonl", b"".join(_json(e.to_document()).replace(b"\n", b"") + b"\n"
                                                  for e in entries))
            put("searches.json", _json(searches))
            put("models.json", _json(facts.models))
            archive.writestr("SHA256SUMS", "\n".join(sums) + "\n")
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        os.replace(partial, out)
        return BundleSummary(out, case_id, len(shas), digest)

    @staticmethod
    def _original_name(upload: Upload) -> str:
        return f"originals/{upload.sha256}{EXTENSIONS.get(upload.media_type, '.bin')}"

    def _evidence(self, uploads: list[tuple[Submission, Upload]], facts: CatalogFacts
                  ) -> Iterator[tuple[str, bytes, bool]]:
        seen: set[str] = set()
        for _, upload in uploads:
            yield upload.manifest_key, read_bytes(self.client, self.buckets.evidence, upload.manifest_key), False
            if upload.sha256 in seen:
                continue
            seen.add(upload.sha256)
            data = read_bytes(self.client, self.buckets.evidence, upload.object_key, upload.object_version)
            if hashlib.sha256(data).hexdigest() != upload.sha256:
                raise BundleIntegrityError(f"{upload.object_key}@{upload.object_version} does not hash to its sha256;"
                                           " run `witness verify` - nothing was exported")
            yield self._original_name(upload), data, True
            redacted = redact_photo(data, facts.regions.get(upload.sha256, []), keep=facts.keep.get(upload.sha256, []),
                                    max_pixels=self.max_pixels)
            yield f"redacted/{upload.sha256}.jpg", redacted, True
