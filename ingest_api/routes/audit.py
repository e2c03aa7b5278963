"""The audit trail for auditors: read entries (by range or case) and verify the chain against its locked seals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.auth import GovernanceDep, requires
from ingest_api.governance.policy import Action, Principal
from ingest_api.governance.seals import SealTarget
from ingest_api.governance.verify import verify_audit_log
from ingest_api.routes.errors import STAFF, error_responses

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=error_responses(*STAFF))
Auditor = Annotated[Principal, Depends(requires(Action.READ_AUDIT))]
Verifier = Annotated[Principal, Depends(requires(Action.VERIFY_INTEGRITY))]


@router.get("")
async def read_audit(
    staff: Auditor,
    governance: GovernanceDep,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    case_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Entries with seq > after_seq (or every entry of one case), with their hashes so they can be re-verified."""
    if case_id is not None:
        entries = await run_in_threadpool(governance.audit.entries_for_case, case_id)
        entries = [entry for entry in entries if entry.seq > after_seq][:limit]
    else:
        entries = await run_in_threadpool(governance.audit.entries, after_seq=after_seq, limit=limit)
    # Reading the trail is itself audited: who looked at whose activity.
    await run_in_threadpool(governance.audit.append, AuditRecord(
        actor=staff.user_id, role=staff.role.value, action="audit_read",
        parameters={"after_seq": after_seq, "limit": limit, "case_id": case_id}))
    return {"entries": [entry.to_document() for entry in entries],
            "next_after_seq": entries[-1].seq if entries else after_seq}


@router.get("/verify", responses=error_responses(503))
async def verify(request: Request, staff: Verifier, governance: GovernanceDep) -> dict[str, Any]:
    """The chain checked against itself and every sealed, locked segment."""
    settings = request.app.state.settings
    target = SealTarget(bucket=settings.s3.buckets.audit)
    result = await run_in_threadpool(verify_audit_log, governance.audit, request.app.state.s3_client, target)
    chain = result.chain
    return {"ok": result.ok, "entries_checked": chain.entries_checked, "head_seq": chain.head.seq,
            "sealed_through": chain.sealed_through,
            "problems": [{"seq": p.seq, "kind": p.kind, "detail": p.detail} for p in chain.problems],
            "seal_problems": list(result.seal_problems)}
