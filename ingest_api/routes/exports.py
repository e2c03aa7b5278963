"""The court bundle of a case over HTTP (the same zip as `witness export CASE`); the export is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ingest_api.deps import SettingsDep
from ingest_api.governance.auth import requires
from ingest_api.governance.bundle import CaseBundler
from ingest_api.governance.policy import Action, Principal, require_case
from ingest_api.routes.errors import STAFF, error_responses

router = APIRouter(prefix="/v1", tags=["court bundle"])
Exporter = Annotated[Principal, Depends(requires(Action.EXPORT_CASE))]


@router.get("/cases/{case_id}/export", response_class=FileResponse, responses=error_responses(*STAFF, 404, 503))
async def export_case(case_id: str, staff: Exporter, request: Request, settings: SettingsDep) -> FileResponse:
    require_case(staff, Action.EXPORT_CASE, case_id)
    bundler = CaseBundler(client=request.app.state.s3_client, buckets=settings.s3.buckets,
                          sessions=request.app.state.governance.cases.sessions,
                          audit=request.app.state.governance.audit, max_pixels=settings.max_pixels,
                          receipt_of=request.app.state.submissions.receipt_of)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    out = settings.state_dir / "exports" / f"case-{case_id}-{stamp}.zip"
    summary = await run_in_threadpool(bundler.write, case_id=case_id, actor=staff.user_id, role=staff.role.value,
                                      out=out)
    return FileResponse(summary.path, media_type="application/zip", filename=summary.path.name,
                        headers={"X-Bundle-SHA256": summary.sha256}, background=BackgroundTask(summary.path.unlink))
