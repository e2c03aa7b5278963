"""After the evidence: erase expired events and withdrawn submissions from the catalog and the search indexes.

    follow_up = ErasureFollowUp(client=client, buckets=buckets, sessions=sessions, audit=audit,
                                index=IndexTarget(work_dir=state_dir / "index-build",
                                                  cache_root=state_dir / "index-cache"))
    report = follow_up.run(actor="cli:ops", role="operator")

`witness expire` runs it after `RetentionJob.run`, every time (withdrawals need it as much as expiries). What is
gone comes from the database: erased events, withdrawn submissions, and their uploads' photo ids. In order:

1. catalog: `beam_jobs.pipeline.erasure.erase_from_catalog` replaces each committed run holding their rows by a
   verified redacted copy and deletes every object version of the old one (and their thumbnails and crops);
2. index: `indexers.index_job.index_catalog` publishes versions without them (skipped with `index=None`);
3. prune: `indexers.prune` deletes the older index versions holding them, and stale local copies.

Every step is idempotent and runs even when an earlier one failed (each is safe on its own); each that changed
something, failed or left something to do appends one audit entry. `report.failed` names the steps to retry
(the next run does), `report.pending` what is not erased yet and why (e.g. a served index version still holding
erased rows because the index step was skipped or failed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio import Minio
from minio.error import S3Error
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker
from urllib3.exceptions import HTTPError

from beam_jobs.extraction.photo import photo_id_for
from beam_jobs.pipeline.catalog import RunVerificationError
from beam_jobs.pipeline.erasure import CatalogErasure, CatalogErasureFailed, ErasureScope, erase_from_catalog
from indexers.catalog_index import INDEX_KINDS
from indexers.index_job import IndexOutcome, index_catalog
from indexers.prune import PruneFailed, PruneOutcome, prune_local, prune_versions
from indexers.s3_versions import PointerMovedError
from indexers.storage_format import CorruptVersionError
from infra.storage.config import BucketNames
from ingest_api.db.models import Submission, Upload
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.tables import EventErasure

# What a step may fail with and a later run can finish; anything else is a bug and propagates.
_RETRYABLE = (S3Error, HTTPError, OSError, CatalogErasureFailed, RunVerificationError, PointerMovedError,
              CorruptVersionError, PruneFailed)


@dataclass(frozen=True)
class IndexTarget:
    """Where the index step builds (`work_dir`) and caches (`cache_root`) versions: `witness index`'s folders."""

    work_dir: Path
    cache_root: Path
    kinds: tuple[str, ...] = INDEX_KINDS


@dataclass
class ErasureReport:
    scope: ErasureScope
    catalog: CatalogErasure | None = None
    index: list[IndexOutcome] = field(default_factory=list)
    pruned: list[PruneOutcome] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


def erasure_scope(session: Session) -> ErasureScope:
    """Erased events, withdrawn submissions and those of erased events, and the photo ids of their uploads."""
    erased = select(EventErasure.event_id)
    gone = or_(Submission.withdrawn_at.is_not(None), Submission.event_id.in_(erased), Upload.withdrawn_at.is_not(None))
    rows = session.execute(select(Submission.id, Submission.event_id, Upload.sha256, Submission.withdrawn_at,
                                  Submission.event_id.in_(erased))
                           .outerjoin(Upload, Upload.submission_id == Submission.id).where(gone)).all()
    return ErasureScope(
        event_ids=frozenset(session.scalars(erased)),
        submission_ids=frozenset(row[0] for row in rows if row[3] is not None or row[4]),
        photo_ids=frozenset(photo_id_for(event_id=row[1], submission_id=row[0], sha256=row[2])
                            for row in rows if row[2]),
    )


def _catalog_summary(outcome: CatalogErasure) -> dict[str, Any]:
    return {"replaced_runs": dict(sorted(outcome.replaced.items())), "rows_removed": dict(outcome.rows_removed),
            "derived_deleted": outcome.derived_deleted, "swept_runs": sorted(outcome.swept),
            "object_versions_deleted": outcome.object_versions_deleted}


@dataclass(frozen=True)
class ErasureFollowUp:
    client: Minio
    buckets: BucketNames
    sessions: sessionmaker[Session]
    audit: AuditLog
    index: IndexTarget | None = None

    def run(self, *, actor: str = "system", role: str = "admin") -> ErasureReport:
        with self.sessions() as session:
            report = ErasureReport(erasure_scope(session))
        self._catalog(report, actor, role)
        self._index(report, actor, role)
        self._prune(report, actor, role)
        return report

    def _audit(self, actor: str, role: str, action: str, parameters: dict[str, Any]) -> None:
        self.audit.append(AuditRecord(actor=actor, role=role, action=action, parameters=parameters))

    def _catalog(self, report: ErasureReport, actor: str, role: str) -> None:
        try:
            report.catalog = erase_from_catalog(self.client, catalog_bucket=self.buckets.catalog,
                                                derived_bucket=self.buckets.derived, scope=report.scope)
        except _RETRYABLE as error:
            report.failed.append(f"catalog: {error}")
            self._audit(actor, role, "erase_catalog", {"error": str(error)})
            return
        done = report.catalog
        if done.in_flight:
            report.pending.append(f"catalog: uncommitted runs left alone (maybe still running): "
                                  f"{', '.join(done.in_flight)}")
        if done.replaced or done.swept or done.object_versions_deleted:
            self._audit(actor, role, "erase_catalog", _catalog_summary(done))

    def _index(self, report: ErasureReport, actor: str, role: str) -> None:
        if self.index is None:
            report.pending.append("index: not updated here (no index folders given); run `witness index`")
            return
        try:
            report.index = index_catalog(self.client, self.buckets.catalog, kinds=self.index.kinds,
                                         work_dir=self.index.work_dir, cache_root=self.index.cache_root,
                                         withdrawn_submission_ids=report.scope.submission_ids)
        except _RETRYABLE as error:
            report.failed.append(f"index: {error}")
            self._audit(actor, role, "erase_index", {"error": str(error)})
            return
        published = {o.kind: {"action": o.action, "version": o.version, "removed_photos": o.removed_photos}
                     for o in report.index if o.action in ("built", "updated")}
        if published:
            self._audit(actor, role, "erase_index", {"published": published})

    def _prune(self, report: ErasureReport, actor: str, role: str) -> None:
        kinds = self.index.kinds if self.index else INDEX_KINDS
        local: dict[str, list[str]] = {}
        try:
            for kind in kinds:
                outcome = prune_versions(self.client, self.buckets.catalog, kind,
                                         gone_submission_ids=report.scope.submission_ids,
                                         gone_photo_ids=report.scope.photo_ids)
                report.pruned.append(outcome)
                if not outcome.current_clean:
                    report.pending.append(f"index {kind}: the served version {outcome.current} still holds "
                                          "erased rows; the next index update removes them")
                if outcome.kept_newer:
                    report.pending.append(f"index {kind}: versions newer than the served one hold erased rows "
                                          f"(maybe being published): {', '.join(outcome.kept_newer)}")
                if self.index and outcome.current:
                    local[kind] = (prune_local(self.index.cache_root, kind, keep={outcome.current})
                                   + prune_local(self.index.work_dir, kind, keep=()))
        except _RETRYABLE as error:
            report.failed.append(f"prune: {error}")
            self._audit(actor, role, "erase_index_versions", {"error": str(error), "pending": report.pending})
            return
        deleted = {o.kind: {"deleted_versions": list(o.deleted_versions), "object_versions": o.deleted_objects}
                   for o in report.pruned if o.deleted_objects}
        removed_locally = {kind: names for kind, names in local.items() if names}
        if deleted or removed_locally or report.pending:
            self._audit(actor, role, "erase_index_versions", {"deleted": deleted, "local_copies": removed_locally,
                                                              "pending": report.pending})
