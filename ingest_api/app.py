"""Builds the FastAPI application. Nothing happens at import: `create_app(settings)` wires everything.

witness serve            # or: uvicorn --factory ingest_api.app:app_from_env
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from infra.storage.client import build_client, ensure_buckets
from ingest_api.db.session import build_engine, session_factory
from ingest_api.routes import photos
from ingest_api.services.ingest import IngestService, StorageUnavailable
from ingest_api.services.sniff import RejectedUpload
from ingest_api.settings import ApiSettings


def create_app(settings: ApiSettings) -> FastAPI:
    api_version = version("witness")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = build_client(settings.s3)
        ensure_buckets(client, settings.s3)
        engine = build_engine(settings.effective_database_url)
        app.state.settings = settings
        app.state.ingest_service = IngestService(
            client=client,
            buckets=settings.s3.buckets,
            sessions=session_factory(engine),
            max_pixels=settings.max_pixels,
            api_version=api_version,
        )
        yield
        engine.dispose()

    app = FastAPI(title="Witness API", version=api_version, lifespan=lifespan)
    app.include_router(photos.router)

    @app.exception_handler(RejectedUpload)
    async def rejected(_: Request, error: RejectedUpload) -> JSONResponse:
        return JSONResponse({"code": error.code, "message": error.message}, status_code=error.status)

    @app.exception_handler(StorageUnavailable)
    async def unavailable(_: Request, error: StorageUnavailable) -> JSONResponse:
        return JSONResponse(
            {"code": "storage_unavailable", "message": str(error)}, status_code=503, headers={"Retry-After": "5"}
        )

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: reads the environment once."""
    return create_app(ApiSettings())
