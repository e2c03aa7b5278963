"""The one error body every route answers with, and the OpenAPI `responses` that declare it.

Every refusal the API makes is `{"code": ..., "message": ...}` (validation errors add `detail`), whichever layer
raised it: a route, a service's `RejectedUpload`, a governance error or a search error (see the handlers in
`ingest_api.app`, `governance.auth` and `routes.search`). Routes declare the statuses they can answer with through
`error_responses(...)`, so clients generated from the schema expect them, and the schema test
(`tests/reliability/test_api_schema.py`) fails when a route answers with a status it does not declare.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    code: str = Field(description="stable machine-readable reason, e.g. `unknown_event`, `offset_mismatch`")
    message: str = Field(description="what went wrong and what to do about it, for a person")
    detail: list[dict[str, Any]] | None = Field(default=None, description="per-field problems (422 only)")


WHEN: dict[int, str] = {
    400: "Malformed request: empty body, bad header or metadata",
    401: "No valid credentials: staff bearer token missing, unknown or expired; or a wrong submission token",
    403: "Authenticated but not allowed: role, case assignment, or a fence that needs a supervisor's approval",
    404: "No such resource (event, receipt, upload, case, staff member, detection)",
    409: "Conflicts with the current state (tus offset, already complete, already exists, four eyes)",
    410: "Gone: the event is closed, the submission withdrawn or the upload expired",
    412: "Precondition failed: the tus protocol version is missing or not supported",
    413: "Too large: body, declared length or pixel count over the configured limit",
    415: "Unsupported media type: not an accepted image, or the wrong tus content type",
    422: "The request is well formed but invalid (fields, fence, query image, legal basis)",
    423: "Locked: the upload is being written by another request, or the evidence is under legal hold; retry later",
    429: "Too many requests from this address or submission; wait for `Retry-After` seconds",
    460: "tus checksum extension: the chunk does not match its `Upload-Checksum`; nothing of it was kept",
    503: "A dependency (evidence store, index) is unavailable; nothing was acknowledged; retry after `Retry-After`",
}

# The statuses shared by whole groups of routes.
STAFF = (401, 403)
WITNESS = (429, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring `statuses` with the shared error body."""
    return {status: {"model": ErrorOut, "description": WHEN[status]} for status in sorted(set(statuses))}
