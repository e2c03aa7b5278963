"""Submissions and their signed receipts: open one, read its receipt by token, withdraw it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ingest_api.deps import SubmissionsDep, limit_ip, limit_receipt_token
from ingest_api.routes.errors import error_responses

router = APIRouter(prefix="/v1", tags=["submissions and receipts"], dependencies=[Depends(limit_ip)],
                   responses=error_responses(404, 429))


class SubmissionOut(BaseModel):
    submission_id: str
    event_id: str
    submission_token: str
    receipt_url: str
    upload_url: str


@router.post("/events/{event_id}/submissions", status_code=201, response_model=SubmissionOut,
             responses=error_responses(410))
async def open_submission(event_id: str, request: Request, submissions: SubmissionsDep) -> SubmissionOut:
    """Open a submission; its token goes into each resumable upload's metadata and reads the receipt later."""
    opened = await run_in_threadpool(submissions.open, event_id=event_id)
    return SubmissionOut(
        submission_id=opened.submission_id,
        event_id=opened.event_id,
        submission_token=opened.submission_token,
        receipt_url=str(request.url_for("read_receipt", token=opened.submission_token).path),
        upload_url=str(request.url_for("create_upload").path),
    )


@router.get("/receipts/{token}", name="read_receipt", dependencies=[Depends(limit_receipt_token)])
async def read_receipt(token: str, submissions: SubmissionsDep) -> dict[str, Any]:
    """The signed receipt: every file with its SHA-256, size, time and status (stored / withdrawn)."""
    return await run_in_threadpool(submissions.receipt, token=token)


@router.delete("/receipts/{token}", dependencies=[Depends(limit_receipt_token)],
                responses=error_responses(409, 410, 503))
async def withdraw(token: str, submissions: SubmissionsDep) -> dict[str, Any]:
    """Withdraw the submission: its photos are deleted unless investigators placed a legal hold (409)."""
    return await run_in_threadpool(submissions.withdraw, token=token)
