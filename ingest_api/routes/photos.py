"""Witness photo upload: the raw image is the request body (no multipart form), one photo per request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ingest_api.db.repository import hash_token
from ingest_api.deps import IngestServiceDep, SettingsDep, get_guard, limit_ip
from ingest_api.routes.errors import error_responses
from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.spool import spool_body

# The same abuse limits as the resumable path: requests per address, requests per submission token, request bodies
# in flight server-wide, and each submission's budget of files and bytes (checked by the service).
router = APIRouter(prefix="/v1", tags=["witness uploads"], dependencies=[Depends(limit_ip)])

IDEMPOTENCY_KEY_HELP = (
    "One fresh random key per photo (e.g. a UUID from `crypto.randomUUID()`), sent again, unchanged, with every "
    "retry of that photo (IETF draft *The Idempotency-Key HTTP Header Field*; a quoted string is accepted too). "
    "On an upload without `X-Submission-Token`, the first request with the key opens the submission and every "
    "retry within 24 hours (by default) gets the receipt for that same submission, with its `submission_token` "
    "again: keep the key as secret as the token (the token is derived from it: only as hard to guess as the key). "
    "The same key with a different photo is refused with 422 "
    "(`idempotency_key_reused`). 16 to 255 printable ASCII characters, no spaces. Ignored with "
    "`X-Submission-Token` (such an upload is idempotent already: the same bytes answer `duplicate: true`)."
)


class ReceiptOut(BaseModel):
    submission_id: str
    event_id: str
    sha256: str
    size: int
    media_type: str
    width: int
    height: int
    received_at: datetime
    duplicate: bool
    submission_token: str | None = None


@router.post(
    "/events/{event_id}/photos",
    status_code=201,
    response_model=ReceiptOut,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 404, 410, 413, 415, 422, 429, 503),
    summary="Upload one photo for an event",
    description=(
        "Send the image bytes as the request body (JPEG, PNG, HEIC/HEIF or WebP). The receipt is returned only "
        "after the photo is stored and its SHA-256 verified. The first upload opens a submission and returns its "
        "`submission_token`; send it as `X-Submission-Token` to add more photos to the same submission. Send an "
        "`Idempotency-Key` with that first upload, so that retrying it after a lost answer does not open a second "
        "submission (without it, each retry opens another submission and the photo is processed once per copy)."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def upload_photo(
    event_id: str,
    request: Request,
    service: IngestServiceDep,
    settings: SettingsDep,
    x_submission_token: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[
        str | None, Header(min_length=16, max_length=255, pattern="^[!-~]+$", description=IDEMPOTENCY_KEY_HELP)
    ] = None,
) -> ReceiptOut:
    # Read from the request rather than declared: Content-Length is HTTP framing that uvicorn has validated.
    declared = request.headers.get("content-length", "")
    content_length = int(declared) if declared.isdigit() else None
    if content_length is not None and content_length > settings.max_upload_bytes:
        raise RejectedUpload(
            "too_large", f"the upload ({content_length} bytes) exceeds the limit of {settings.max_upload_bytes}", 413
        )
    guard = get_guard(request)
    if x_submission_token is not None:
        guard.hit_token(hash_token(x_submission_token))
    with guard.transfer():
        body = await spool_body(
            request.stream(), max_bytes=settings.max_upload_bytes, memory_bytes=settings.spool_memory_bytes
        )
    try:
        receipt = await run_in_threadpool(
            service.accept_photo,
            event_id=event_id,
            submission_token=x_submission_token,
            body=body,
            idempotency_key=None if idempotency_key is None else unquoted(idempotency_key),
        )
    finally:
        body.close()
    return ReceiptOut.model_validate(receipt, from_attributes=True)


def unquoted(key: str) -> str:
    """The key of an `Idempotency-Key` value: the draft sends it as a structured-field string (`"..."`), Stripe
    and most clients bare; both name the same key."""
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == '"' else key
