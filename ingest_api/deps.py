"""`Annotated` dependency aliases: routes declare what they need, tests override it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ingest_api.services.ingest import IngestService
from ingest_api.settings import ApiSettings


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_ingest_service(request: Request) -> IngestService:
    service: IngestService = request.app.state.ingest_service
    return service


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
IngestServiceDep = Annotated[IngestService, Depends(get_ingest_service)]
