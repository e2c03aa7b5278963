"""Public event information for witnesses: what the appeal is about, its upload link and QR code, and the
consented position a witness adds to their submission. Creating events is investigator-side (`witness events`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest_api.db import repository
from ingest_api.deps import IngestServiceDep, PositionsDep, SettingsDep, limit_ip, limit_receipt_token
from ingest_api.routes.errors import error_responses
from ingest_api.services.links import MEDIA_TYPES, QrFormat, qr_code, upload_link
from ingest_api.services.positions import PositionSource
from ingest_api.services.sniff import RejectedUpload

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(limit_ip)], responses=error_responses(404, 429))
METRES_PER_DEGREE = 111_320.0


class PositionIn(BaseModel):
    source: PositionSource
    lat: float
    lon: float
    accuracy_m: float | None = Field(default=None, ge=0)
    captured_at: datetime | None = None
    consent: bool = Field(description="the witness ticked the consent box for sharing this position")


def plan_area(lat: float, lon: float, radius_m: float) -> dict[str, float]:
    """The area the upload page draws for dropping a pin: the appeal's radius around a centre snapped to a grid of
    half that radius, so the exact incident point investigators recorded is not published (pins stay exact)."""
    step_m = max(radius_m / 2, 50.0)
    step_lat = step_m / METRES_PER_DEGREE
    step_lon = step_m / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    snapped_lat = min(max(round(lat / step_lat) * step_lat, -90.0), 90.0)
    snapped_lon = min(max(round(lon / step_lon) * step_lon, -180.0), 180.0)
    return {"lat": round(snapped_lat, 6), "lon": round(snapped_lon, 6), "radius_m": radius_m}


def _utc(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@router.get("/events/{event_id}")
async def public_event(event_id: str, ingest: IngestServiceDep, settings: SettingsDep) -> dict[str, Any]:
    with ingest.sessions() as session:
        event = repository.get_event(session=session, event_id=event_id)
    if event is None:
        raise RejectedUpload("unknown_event", f"no event with id {event_id!r}", 404)
    return {
        "id": event.id,
        "name": event.name,
        "accepts_uploads": event.accepts_uploads,
        "plan": plan_area(event.lat, event.lon, event.radius_m),
        "starts_at": _utc(event.starts_at),
        "ends_at": _utc(event.ends_at),
        "upload_link": upload_link(settings.effective_public_url, event.id),
    }


@router.get("/events/{event_id}/qr.{kind}")
async def event_qr(event_id: str, kind: QrFormat, ingest: IngestServiceDep, settings: SettingsDep) -> Response:
    with ingest.sessions() as session:
        if repository.get_event(session=session, event_id=event_id) is None:
            raise RejectedUpload("unknown_event", f"no event with id {event_id!r}", 404)
    body = qr_code(upload_link(settings.effective_public_url, event_id), kind)
    return Response(body, media_type=MEDIA_TYPES[kind])


@router.post("/receipts/{token}/positions", status_code=201, dependencies=[Depends(limit_receipt_token)],
             responses=error_responses(410, 422))
async def add_position(token: str, position: PositionIn, positions: PositionsDep) -> dict[str, int]:
    position_id = await run_in_threadpool(
        positions.record,
        token=token,
        source=position.source,
        lat=position.lat,
        lon=position.lon,
        accuracy_m=position.accuracy_m,
        captured_at=position.captured_at,
        consent=position.consent,
    )
    return {"position_id": position_id}
