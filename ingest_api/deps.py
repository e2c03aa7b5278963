"""`Annotated` dependency aliases: routes declare what they need, tests override it.

The accessors are `async def` because they do no I/O: FastAPI runs a plain `def` dependency in its threadpool, so
an upload waited for three thread hand-offs before its body was read, and took threadpool slots the storing
needs (docs/BENCHMARKS.md, Ingest, runs 5 and 6; the gain is within the benchmark's noise). `get_guard` stays
plain: routes call it directly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest_api.db.repository import hash_token
from ingest_api.services.ingest import IngestService
from ingest_api.services.limits import AbuseGuard
from ingest_api.services.metrics import UploadMetrics
from ingest_api.services.positions import PositionService
from ingest_api.services.resumable import ResumableUploads
from ingest_api.services.submissions import SubmissionService
from ingest_api.settings import ApiSettings


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_ingest_service(request: Request) -> IngestService:
    service: IngestService = request.app.state.ingest_service
    return service


async def get_resumable(request: Request) -> ResumableUploads:
    uploads: ResumableUploads = request.app.state.resumable
    return uploads


async def get_submissions(request: Request) -> SubmissionService:
    service: SubmissionService = request.app.state.submissions
    return service


async def get_positions(request: Request) -> PositionService:
    service: PositionService = request.app.state.positions
    return service


def get_guard(request: Request) -> AbuseGuard:
    guard: AbuseGuard = request.app.state.guard
    return guard


async def get_metrics(request: Request) -> UploadMetrics:
    metrics: UploadMetrics = request.app.state.metrics
    return metrics


async def limit_ip(request: Request) -> None:
    """Router-level dependency: count the request against its client address."""
    get_guard(request).hit_ip(request.client.host if request.client else "unknown")


async def limit_receipt_token(request: Request, token: str) -> None:
    """Dependency of the `/v1/receipts/{token}/...` routes: count the request against its submission token.

    Per address alone, someone holding a leaked token behind many addresses could rewrite the contact details or
    poll the receipt without bound; uploads already count against the token the same way.
    """
    get_guard(request).hit_token(hash_token(token))


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
IngestServiceDep = Annotated[IngestService, Depends(get_ingest_service)]
ResumableDep = Annotated[ResumableUploads, Depends(get_resumable)]
SubmissionsDep = Annotated[SubmissionService, Depends(get_submissions)]
PositionsDep = Annotated[PositionService, Depends(get_positions)]
MetricsDep = Annotated[UploadMetrics, Depends(get_metrics)]
