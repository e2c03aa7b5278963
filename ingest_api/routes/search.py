"""Investigator search: faces, vehicles, plates and "more like this", always inside a place and time fence.

Every request carries `fence`: a circle (centre + radius) or a polygon, a time window, and explicit
`include_unplaced` / `include_untimed` choices for photos without a trusted position or capture time.
Image queries send the photo or crop base64-encoded in JSON (no multipart parser in this service).
Authentication, case checks and the audit log of searches belong to the governance layer (issue 7):
`case_id` and `legal_basis` are passed through to `SearchOutcome.audit_record()`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from indexers.fence import Circle, Fence, FenceError, Polygon, TimeWindow
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.auth import Governance, GovernanceDep
from ingest_api.governance.policy import Principal
from ingest_api.governance.search_gate import govern_search
from ingest_api.routes.errors import STAFF, error_responses
from ingest_api.services.search import (
    SearchContext,
    SearchOutcome,
    SearchQueryError,
    SearchService,
    SearchUnavailable,
    UnknownDetection,
)

router = APIRouter(prefix="/v1/search", tags=["investigator search"], dependencies=[Depends(govern_search)],
                   responses=error_responses(*STAFF))
MAX_IMAGE_BASE64 = 24 * 1024 * 1024  # ~18 MB of image


def get_search(request: Request) -> SearchService:
    service: SearchService = request.app.state.search
    return service


SearchDep = Annotated[SearchService, Depends(get_search)]


class CircleIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=20_000_000, description="metres; a point exactly on the radius is inside")


class FenceIn(BaseModel):
    """Where and when: exactly one of `circle` / `polygon`, and a half-open UTC window `[start, end)`."""

    model_config = ConfigDict(extra="forbid")
    circle: CircleIn | None = None
    polygon: list[tuple[float, float]] | None = Field(default=None, min_length=3, description="[lat, lon] vertices")
    start: AwareDatetime
    end: AwareDatetime
    include_unplaced: bool = Field(description="also return photos without a trusted position (EXIF/device/pin)")
    include_untimed: bool = Field(description="also return photos without a trusted capture time")

    @model_validator(mode="after")
    def _one_area(self) -> FenceIn:
        if (self.circle is None) == (self.polygon is None):
            raise ValueError("give exactly one of `circle` or `polygon`")
        self.to_fence()  # FenceError is a ValueError: reported as 422 naming the problem
        return self

    def to_fence(self) -> Fence:
        area: Circle | Polygon
        if self.circle is not None:
            area = Circle(self.circle.lat, self.circle.lon, self.circle.radius_m)
        else:
            points = self.polygon or []
            area = Polygon(tuple(p[0] for p in points), tuple(p[1] for p in points))
        return Fence(
            area=area,
            window=TimeWindow(self.start, self.end),
            include_unplaced=self.include_unplaced,
            include_untimed=self.include_untimed,
        )


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fence: FenceIn
    case_id: str | None = Field(default=None, max_length=200, description="the case this search serves (audit)")
    legal_basis: str | None = Field(default=None, max_length=500, description="why it is lawful (audit)")
    approval_id: str | None = Field(
        default=None, max_length=36, description="a supervisor's approval, for fences beyond the configured limits"
    )

    def context(self) -> SearchContext:
        return SearchContext(case_id=self.case_id, legal_basis=self.legal_basis)


class ImageSearchIn(SearchIn):
    image_base64: str = Field(max_length=MAX_IMAGE_BASE64, description="JPEG/PNG/WebP/HEIC photo or crop, base64")
    k: int = Field(default=10, ge=1, le=200, description="results per face/vehicle found in the image")

    def image(self) -> bytes:
        try:
            return base64.b64decode(self.image_base64, validate=True)
        except binascii.Error as error:
            raise SearchQueryError(f"image_base64 is not valid base64: {error}") from error


class SimilarIn(SearchIn):
    detection_id: str = Field(max_length=100, description="a detection returned by an earlier search")
    k: int = Field(default=10, ge=1, le=200)


class PlateIn(SearchIn):
    plate: str = Field(min_length=1, max_length=32, description="e.g. `RK878AC`, `RK-87*`, `?K878A?`")
    limit: int = Field(default=50, ge=1, le=500)
    cutoff: float = Field(default=80.0, ge=50, le=100, description="fuzzy score 0-100 a match must reach")


class VehicleAttributesIn(SearchIn):
    description: str = Field(max_length=100, description="class and/or colour, e.g. `black car`, `white van`")
    limit: int = Field(default=50, ge=1, le=500)


class HitOut(BaseModel):
    query_index: int = Field(description="which face/vehicle of the query image this result answers")
    rank: int
    score: float = Field(description="cosine similarity, or plate match 0-1, or detector confidence")
    kind: str
    detection_id: str
    photo_id: str
    event_id: str | None
    box: tuple[float, float, float, float] | None = Field(description="x, y, w, h in upright photo pixels")
    lat: float | None
    lon: float | None
    position_trusted: bool
    taken_at_utc: datetime | None
    time_trusted: bool
    place_name: str | None
    attributes: dict[str, Any]
    crop_url: str | None = Field(description="presigned URL of the EXIF-free crop")
    thumbnail_url: str | None = Field(description="presigned URL of the EXIF-free photo thumbnail")
    photo_width: int | None = Field(default=None, description="upright photo width, pixels (the box's frame)")
    photo_height: int | None = Field(default=None, description="upright photo height, pixels")
    photo_sha256: str | None = Field(default=None, description="SHA-256 of the original (exact duplicates)")
    phash: str | None = Field(default=None, description="perceptual hash of the photo (near-duplicates)")
    position_source: str | None = Field(default=None, description="exif / device / pin / none")
    time_source: str | None = Field(default=None, description="exif_offset / gps / tz_from_position / unknown")


class SearchOut(BaseModel):
    query: str
    kind: str
    index_version: str
    exact: bool = Field(description="true when every fenced candidate was compared (recall 1.0)")
    candidates: int = Field(description="detections of this kind inside the fence")
    queries: int
    hits: list[HitOut]


SearchActor = Annotated[Principal, Depends(govern_search)]


async def _case_fence(body: SearchIn, governance: Governance) -> Fence:
    """The requested fence, narrowed to the photos of the events linked to the search's case.

    Without this an investigator could search any incident's photos by naming a case they are assigned to.
    """
    fence = body.fence.to_fence()
    if body.case_id is None:  # the gate refuses such searches; tests that bypass it search unscoped
        return fence
    events = await run_in_threadpool(governance.cases.searchable_event_ids, body.case_id)
    return dataclasses.replace(fence, event_ids=events)


async def _audited(outcome: SearchOutcome, staff: Principal, governance: Governance) -> SearchOut:
    """The gate logged the request before it ran; this logs what the investigator was shown."""
    record = outcome.audit_record()
    await run_in_threadpool(
        governance.audit.append,
        AuditRecord(
            actor=staff.user_id,
            role=staff.role.value,
            action="search_results",
            case_id=outcome.context.case_id,
            parameters={k: v for k, v in record.items() if k not in ("detection_ids", "photo_ids")},
            result_ids=record["detection_ids"],
        ),
    )
    return _out(outcome)


def _out(outcome: SearchOutcome) -> SearchOut:
    return SearchOut(
        query=outcome.query,
        kind=outcome.kind,
        index_version=outcome.index_version,
        exact=outcome.exact,
        candidates=outcome.candidates,
        queries=outcome.queries,
        hits=[HitOut.model_validate(hit, from_attributes=True) for hit in outcome.hits],
    )


# Every search may name an unknown detection or meet an index that is not built yet.
ERRORS = error_responses(404, 422, 503)


@router.post("/faces", response_model=SearchOut, responses=ERRORS, summary="Faces like the ones in a photo or crop")
async def faces(body: ImageSearchIn, search: SearchDep, staff: SearchActor, governance: GovernanceDep) -> SearchOut:
    return await _audited(
        await run_in_threadpool(
            search.by_image,
            "face",
            body.image(),
            fence=await _case_fence(body, governance),
            k=body.k,
            context=body.context(),
        ),
        staff,
        governance,
    )


@router.post("/vehicles", response_model=SearchOut, responses=ERRORS, summary="Vehicles like the one in a photo")
async def vehicles(body: ImageSearchIn, search: SearchDep, staff: SearchActor, governance: GovernanceDep) -> SearchOut:
    return await _audited(
        await run_in_threadpool(
            search.by_image,
            "vehicle",
            body.image(),
            fence=await _case_fence(body, governance),
            k=body.k,
            context=body.context(),
        ),
        staff,
        governance,
    )


@router.post(
    "/vehicles/attributes",
    response_model=SearchOut,
    responses=ERRORS,
    summary="Vehicles by class and colour ('black car')",
)
async def vehicle_attributes(
    body: VehicleAttributesIn, search: SearchDep, staff: SearchActor, governance: GovernanceDep
) -> SearchOut:
    return await _audited(
        await run_in_threadpool(
            search.vehicles,
            body.description,
            fence=await _case_fence(body, governance),
            limit=body.limit,
            context=body.context(),
        ),
        staff,
        governance,
    )


@router.post(
    "/plates",
    response_model=SearchOut,
    responses=ERRORS,
    summary="Licence plates: partial, wildcard (`*`, `?`) and OCR-confusion tolerant",
)
async def plates(body: PlateIn, search: SearchDep, staff: SearchActor, governance: GovernanceDep) -> SearchOut:
    return await _audited(
        await run_in_threadpool(
            search.plates,
            body.plate,
            fence=await _case_fence(body, governance),
            limit=body.limit,
            cutoff=body.cutoff,
            context=body.context(),
        ),
        staff,
        governance,
    )


@router.post("/similar", response_model=SearchOut, responses=ERRORS, summary="More like an existing detection")
async def similar(body: SimilarIn, search: SearchDep, staff: SearchActor, governance: GovernanceDep) -> SearchOut:
    return await _audited(
        await run_in_threadpool(
            search.more_like,
            body.detection_id,
            fence=await _case_fence(body, governance),
            k=body.k,
            context=body.context(),
        ),
        staff,
        governance,
    )


@router.get("/indexes", summary="Index version served for each kind")
async def indexes(search: SearchDep) -> dict[str, str]:
    return search.versions


def register(app: FastAPI) -> None:
    """Add the router and map the search errors to `{code, message}` responses."""
    app.include_router(router)
    statuses = {
        SearchUnavailable: (503, "index_unavailable"),
        SearchQueryError: (422, "bad_query"),
        UnknownDetection: (404, "unknown_detection"),
        FenceError: (422, "bad_fence"),
    }
    for error_type, (status, code) in statuses.items():

        def handler(_: Request, error: Exception, status: int = status, code: str = code) -> JSONResponse:
            return JSONResponse({"code": code, "message": str(error)}, status_code=status)

        app.add_exception_handler(error_type, handler)
