"""tus 1.0 resumable uploads (core, creation, creation-with-upload, termination, checksum, expiration).

POST   /v1/uploads          Upload-Length + Upload-Metadata (event_id, submission_token, caption, filename)
HEAD   /v1/uploads/{id}     where the upload stands (Upload-Offset)
PATCH  /v1/uploads/{id}     append bytes at Upload-Offset (optional Upload-Checksum: sha1|sha256)
DELETE /v1/uploads/{id}     cancel an unfinished upload
GET    /v1/uploads/{id}     JSON status, with the file's receipt once stored and verified (not part of tus)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from starlette.requests import ClientDisconnect

from ingest_api.deps import ResumableDep, SettingsDep, limit_ip
from ingest_api.routes.errors import error_responses
from ingest_api.services.resumable_store import UploadState
from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.tus_protocol import (
    CHECKSUM_ALGORITHMS,
    TUS_EXTENSIONS,
    TUS_VERSION,
    http_date,
    parse_checksum,
    parse_metadata,
    parse_non_negative,
)

router = APIRouter(prefix="/v1/uploads", tags=["resumable uploads (tus)"], dependencies=[Depends(limit_ip)],
                   responses=error_responses(429))
# Any tus request may be malformed, speak another protocol version, or meet an unavailable store.
TUS_ERRORS = (400, 412, 503)
# A request that carries bytes may also complete the upload, and then meets every check an upload gets.
RECEIVING_ERRORS = (*TUS_ERRORS, 401, 404, 409, 410, 413, 415, 422, 423, 460)
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"


def require_tus(tus_resumable: Annotated[str | None, Header()] = None) -> None:
    if tus_resumable != TUS_VERSION:
        raise RejectedUpload("tus_version", f"send Tus-Resumable: {TUS_VERSION}", 412)


TusDep = Depends(require_tus)


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that drops the connection just ends it early."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        return


def _headers(state: UploadState, **extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(state.offset), **extra}


def _expires(state: UploadState) -> dict[str, str]:
    return {} if state.finished else {"Upload-Expires": http_date(state.expires)}


@router.options("", status_code=204)
@router.options("/{upload_id}", status_code=204)
async def capabilities(settings: SettingsDep) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.max_upload_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


@router.post("", status_code=201, dependencies=[TusDep], responses=error_responses(*RECEIVING_ERRORS))
async def create_upload(
    request: Request,
    uploads: ResumableDep,
    upload_length: Annotated[str | None, Header()] = None,
    upload_metadata: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
) -> Response:
    length = parse_non_negative("Upload-Length", upload_length)
    state = uploads.create(length=length, metadata=parse_metadata(upload_metadata))
    # Content-Length is read from the request, not declared as a parameter: it is the HTTP server's framing
    # (uvicorn refuses a malformed one before the app sees it), not part of the API's contract.
    content_length = request.headers.get("content-length")
    if content_type == OFFSET_CONTENT_TYPE and content_length not in (None, "0"):
        state = await uploads.receive(
            state.id,
            offset=0,
            chunks=_body(request),
            declared=parse_non_negative("Content-Length", content_length),
            checksum=parse_checksum(upload_checksum),
        )
    location = str(request.url_for("upload_status", upload_id=state.id).path)
    return Response(status_code=201, headers=_headers(state, Location=location, **_expires(state)))


@router.head("/{upload_id}", dependencies=[TusDep], responses=error_responses(*TUS_ERRORS, 404, 410))
async def upload_offset(upload_id: str, uploads: ResumableDep) -> Response:
    state = uploads.status(upload_id)
    if state.error is not None:
        raise RejectedUpload(state.error["code"], state.error["message"], 410)
    headers = _headers(state, **{"Upload-Length": str(state.length), "Cache-Control": "no-store"}, **_expires(state))
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204, dependencies=[TusDep], responses=error_responses(*RECEIVING_ERRORS))
async def append(
    upload_id: str,
    request: Request,
    uploads: ResumableDep,
    upload_offset: Annotated[str | None, Header()] = None,
    content_type: Annotated[str | None, Header()] = None,
    upload_checksum: Annotated[str | None, Header()] = None,
) -> Response:
    content_length = request.headers.get("content-length")
    if content_type != OFFSET_CONTENT_TYPE:
        raise RejectedUpload("bad_content_type", f"PATCH bodies must be {OFFSET_CONTENT_TYPE}", 415)
    state = await uploads.receive(
        upload_id,
        offset=parse_non_negative("Upload-Offset", upload_offset),
        chunks=_body(request),
        declared=None if content_length is None else parse_non_negative("Content-Length", content_length),
        checksum=parse_checksum(upload_checksum),
    )
    return Response(status_code=204, headers=_headers(state, **_expires(state)))


@router.delete("/{upload_id}", status_code=204, dependencies=[TusDep],
               responses=error_responses(*TUS_ERRORS, 404, 410))
async def terminate(upload_id: str, uploads: ResumableDep) -> Response:
    uploads.terminate(upload_id)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})


@router.get("/{upload_id}", name="upload_status", responses=error_responses(404, 410))
async def upload_status(upload_id: str, uploads: ResumableDep) -> dict[str, Any]:
    state = uploads.status(upload_id)
    phase = "stored" if state.receipt else "refused" if state.error else "receiving"
    return {
        "upload_id": state.id,
        "state": phase,
        "offset": state.offset,
        "length": state.length,
        "expires_at": state.expires_at,
        "receipt": state.receipt,
        "error": state.error,
    }
