"""Builds the FastAPI application. Nothing happens at import: `create_app(settings)` wires everything.

witness serve            # or: uvicorn --factory ingest_api.app:app_from_env
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib.metadata import version

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from minio import Minio
from minio.error import S3Error
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError
from urllib3.exceptions import HTTPError

from infra.storage.client import build_client, ensure_buckets
from infra.storage.integrity import choose_verification
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.auth import register_error_handlers
from ingest_api.governance.seals import SealTarget, seal_pending, seal_periodically
from ingest_api.governance.service import build_governance
from ingest_api.routes import audit, auth, cases, console, events, exports, photos, staff, submissions, uploads, web
from ingest_api.routes import contacts as contact_routes
from ingest_api.routes import search as search_routes
from ingest_api.services.contacts import ContactCipher, ContactService
from ingest_api.services.ingest import IngestService, StorageUnavailable
from ingest_api.services.limits import AbuseGuard
from ingest_api.services.metrics import UploadMetrics, metrics_reader
from ingest_api.services.positions import PositionService
from ingest_api.services.resumable import ResumableUploads
from ingest_api.services.resumable_store import ResumableStore, UnknownUpload
from ingest_api.services.search import REFRESH_INTERVAL_S, SearchService
from ingest_api.services.sniff import RejectedUpload
from ingest_api.services.store_slots import StoreWriteSlots
from ingest_api.services.submissions import SubmissionService
from ingest_api.settings import ApiSettings

log = logging.getLogger(__name__)
TUS_HEADER = {"Tus-Resumable": "1.0.0"}


def sweep_once(resumable: ResumableUploads, ingest: IngestService) -> tuple[int, int]:
    """One round of the housekeeping sweep: (expired resumable uploads, expired Idempotency-Key rows) removed.

    A step that fails (the database locked or away, a spool folder unreadable) is logged and counted as nothing:
    the next round tries again. Left to raise, it would end the background task, and with it every later sweep,
    until the API restarts."""
    uploads = keys = 0
    try:
        uploads = len(resumable.sweep())
    except (SQLAlchemyError, OSError):
        log.exception("sweeping expired resumable uploads failed; the next round retries")
    try:
        keys = ingest.sweep_idempotency_keys()
    except SQLAlchemyError:
        log.exception("sweeping expired Idempotency-Key rows failed; the next round retries")
    if uploads or keys:
        log.info("removed %d expired resumable uploads and %d expired Idempotency-Key rows", uploads, keys)
    return uploads, keys


async def _sweep_forever(resumable: ResumableUploads, ingest: IngestService, interval_s: float) -> None:
    while True:
        await asyncio.to_thread(sweep_once, resumable, ingest)
        await asyncio.sleep(interval_s)


def _final_seal(audit_log: AuditLog, client: Minio, settings: ApiSettings) -> None:
    """Seal what the last minutes appended before the process goes; a failure leaves it for the next start."""
    try:
        seal_pending(audit_log, client, SealTarget(bucket=settings.s3.buckets.audit))
    except (S3Error, HTTPError) as error:
        log.error("final audit seal failed (the next start seals these entries): %s", error)


def create_app(settings: ApiSettings) -> FastAPI:
    api_version = version("witness")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = build_client(settings.s3)
        ensure_buckets(client, settings.s3)
        engine = build_engine(settings.effective_database_url)
        sessions = session_factory(engine)
        ingest = IngestService(
            client=client,
            buckets=settings.s3.buckets,
            sessions=sessions,
            max_pixels=settings.max_pixels,
            api_version=api_version,
            idempotency_ttl=timedelta(seconds=settings.idempotency_ttl_s),
            limits=settings.limits,
            store_slots=StoreWriteSlots(settings.store_write_slots or None, wait_s=settings.store_write_wait_s),
            # Lean on the server's SHA-256 check on write only if this server is seen to refuse a wrong checksum.
            verification=choose_verification(client, settings.s3.buckets.derived),
        )
        metrics, guard = UploadMetrics(), AbuseGuard(settings.limits)
        metrics.watch_store_slots(ingest.store_slots)
        app.state.settings, app.state.ingest_service = settings, ingest
        app.state.metrics, app.state.guard = metrics, guard
        app.state.resumable = ResumableUploads(
            store=ResumableStore(settings.resumable_dir),
            ingest=ingest,
            guard=guard,
            metrics=metrics,
            max_upload_bytes=settings.max_upload_bytes,
            expiry=timedelta(seconds=settings.resumable_expiry_s),
        )
        app.state.submissions = SubmissionService(
            client=client,
            buckets=settings.s3.buckets,
            sessions=sessions,
            receipt_key=settings.receipt_key.get_secret_value().encode(),
            receipt_key_id=settings.receipt_key_id,
        )
        app.state.positions = PositionService(sessions)
        app.state.s3_client = client
        app.state.governance = build_governance(settings, sessions=sessions, engine=engine)
        app.state.governance.audit.require_table()
        app.state.contacts = ContactService(
            sessions=sessions,
            audit=app.state.governance.audit,
            cipher=ContactCipher(key=settings.contact_key_bytes, key_id=settings.contact_key_id),
        )
        seal_stop = threading.Event()
        sealer = threading.Thread(
            target=seal_periodically,
            args=(app.state.governance.audit, client, SealTarget(bucket=settings.s3.buckets.audit)),
            kwargs={"interval_s": settings.audit_seal_interval_s, "stop": seal_stop},
            name="witness-audit-sealer",
            daemon=True,
        )
        sealer.start()
        sweeper = asyncio.create_task(
            _sweep_forever(app.state.resumable, app.state.ingest_service, settings.resumable_sweep_interval_s)
        )
        app.state.search = SearchService.from_settings(settings.s3, client=client, state_dir=settings.state_dir)
        search_refresher = asyncio.create_task(app.state.search.refresh_forever(REFRESH_INTERVAL_S))
        yield
        search_refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await search_refresher
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        seal_stop.set()
        sealer.join(timeout=30)
        await asyncio.to_thread(_final_seal, app.state.governance.audit, client, settings)
        engine.dispose()

    app = FastAPI(title="Witness API", version=api_version, lifespan=lifespan)
    app.include_router(photos.router)
    app.include_router(uploads.router)
    app.include_router(submissions.router)
    app.include_router(contact_routes.witness_router)
    search_routes.register(app)
    app.include_router(events.router)
    app.include_router(web.router)
    app.include_router(console.router)
    staff_routers = (auth.router, staff.router, cases.router, contact_routes.staff_router, audit.router, exports.router)
    for staff_router in staff_routers:
        app.include_router(staff_router)
    register_error_handlers(app)

    @app.exception_handler(RejectedUpload)
    async def rejected(request: Request, error: RejectedUpload) -> JSONResponse:
        request.app.state.metrics.failures.labels(error.code).inc()
        headers = {**TUS_HEADER, **({"Retry-After": "5"} if error.status in (423, 429, 503) else {})}
        return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status, headers=headers)

    @app.exception_handler(UnknownUpload)
    async def unknown_upload(_: Request, error: UnknownUpload) -> JSONResponse:
        message = "no such upload (it finished long ago, was cancelled, or expired); start it again"
        return JSONResponse({"code": "unknown_upload", "message": message}, status_code=404, headers=TUS_HEADER)

    @app.exception_handler(StorageUnavailable)
    async def unavailable(_: Request, error: StorageUnavailable) -> JSONResponse:
        return JSONResponse(
            {"code": "storage_unavailable", "message": str(error)},
            status_code=503,
            headers={"Retry-After": "5", **TUS_HEADER},
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input back and cannot encode a lone surrogate ("\ud800"), answering 500
        # to hostile JSON. Same `detail` shape, without the echo, and ASCII-escaped so any string encodes.
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()]
        message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
        body = json.dumps({"code": "invalid_request", "message": message, "detail": detail}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not metrics_reader(settings.metrics_token, request.headers.get("authorization")):
            message = "send `Authorization: Bearer <metrics token>`"
            return JSONResponse({"code": "not_authenticated", "message": message}, status_code=401,
                                headers={"WWW-Authenticate": "Bearer"})
        return Response(request.app.state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: reads the environment once."""
    return create_app(ApiSettings())
