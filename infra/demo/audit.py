"""What the demo's searches left in the audit log, and the `witness audit verify` check of the whole chain."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console

from infra.storage.client import build_client
from ingest_api.db.session import build_engine
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.seals import SealTarget
from ingest_api.governance.verify import print_verification, verify_audit_log
from ingest_api.settings import ApiSettings


@dataclass(frozen=True)
class AuditSummary:
    entries: int  # the whole chain
    case_entries: int  # entries naming the demo case (creation, assignment, event, searches...)
    searches: int  # search requests this run logged before they ran
    results_logged: int  # entries of this run listing the result ids each search showed
    sealed_through: int
    ok: bool  # the chain and its locked seals verify


def audit_head(settings: ApiSettings) -> int:
    engine = build_engine(settings.effective_database_url)
    try:
        return AuditLog(engine).head().seq
    finally:
        engine.dispose()


def check_audit(settings: ApiSettings, *, case_id: str, since_seq: int, console: Console) -> AuditSummary:
    """Count the run's search entries (after `since_seq`) and verify the chain against its seals."""
    engine = build_engine(settings.effective_database_url)
    try:
        log = AuditLog(engine)
        recent = [e for e in log.entries(after_seq=since_seq) if e.case_id == case_id]
        verification = verify_audit_log(log, build_client(settings.s3), SealTarget(bucket=settings.s3.buckets.audit))
        summary = AuditSummary(
            entries=verification.chain.entries_checked,
            case_entries=len(log.entries_for_case(case_id)),
            searches=sum(e.action == "search" for e in recent),
            results_logged=sum(e.action == "search_results" for e in recent),
            sealed_through=verification.chain.sealed_through,
            ok=verification.ok,
        )
    finally:
        engine.dispose()
    console.print(f"Audit log: {summary.searches} search requests and {summary.results_logged} result lists "
                  f"logged by this run; {summary.case_entries} entries for the case, {summary.entries} in all.")
    console.print("`witness audit verify`: ", end="")
    print_verification(verification, console)
    return summary
