"""Cases (supervisors create them, assign investigators, link events) and staff-side events: investigators open
appeals for their cases and see only their cases' events; supervisors place legal holds; admins set retention."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest_api.deps import SettingsDep
from ingest_api.governance.auth import GovernanceDep, requires
from ingest_api.governance.cases import CaseView, EventView
from ingest_api.governance.policy import Action, Principal
from ingest_api.governance.staff import GovernanceConflict
from ingest_api.governance.subjects import CaseSubjects, SubjectView
from ingest_api.routes.errors import STAFF, error_responses
from ingest_api.services.links import upload_link

router = APIRouter(prefix="/v1", tags=["cases and staff events"], responses=error_responses(*STAFF))
CreateCase = Annotated[Principal, Depends(requires(Action.CREATE_CASE))]
AssignCase = Annotated[Principal, Depends(requires(Action.ASSIGN_CASE))]
ViewCase = Annotated[Principal, Depends(requires(Action.VIEW_CASE))]
CreateEvent = Annotated[Principal, Depends(requires(Action.CREATE_EVENT))]
LegalHoldStaff = Annotated[Principal, Depends(requires(Action.PLACE_LEGAL_HOLD))]
RetentionStaff = Annotated[Principal, Depends(requires(Action.SET_RETENTION))]
ApproveFence = Annotated[Principal, Depends(requires(Action.APPROVE_FENCE))]
MarkSubject = Annotated[Principal, Depends(requires(Action.MARK_SUBJECT))]


class FenceApprovalIn(BaseModel):
    max_radius_m: float = Field(gt=0, le=500_000, description="largest circle radius the approval covers")
    max_window_s: float = Field(gt=0, le=366 * 24 * 3600, description="longest time window it covers, seconds")
    reason: str = Field(min_length=1, max_length=500, description="why such a wide search is justified")
    valid_hours: float = Field(default=24, gt=0, le=24 * 30, description="how long the approval may be used")


class FenceApprovalOut(BaseModel):
    id: str
    case_id: str
    approved_by: str
    max_radius_m: float
    max_window_s: float
    reason: str
    approved_at: datetime
    expires_at: datetime


class CaseIn(BaseModel):
    reference: str = Field(min_length=1, max_length=100, description="the force's case number")
    title: str = Field(min_length=1, max_length=200)


class CaseOut(BaseModel):
    id: str
    reference: str
    title: str
    created_by: str
    created_at: datetime
    investigators: list[str]
    event_ids: list[str]


class EventIn(BaseModel):
    case_id: str = Field(min_length=1, max_length=36)
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0, le=50_000)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    retention_days: int = Field(default=365, ge=0, le=36500)


class EventOut(BaseModel):
    id: str
    name: str
    lat: float
    lon: float
    radius_m: float
    starts_at: datetime
    ends_at: datetime
    retention_days: int
    accepts_uploads: bool
    case_ids: list[str]
    legal_hold: bool
    upload_link: str
    qr_svg_url: str


class HoldIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class RetentionIn(BaseModel):
    retention_days: int = Field(ge=0, le=36500)


def _case(view: CaseView) -> CaseOut:
    return CaseOut.model_validate(view, from_attributes=True)


def _event(view: EventView, public_url: str) -> EventOut:
    fields = {name: getattr(view, name) for name in EventView.__dataclass_fields__}
    return EventOut(**fields, upload_link=upload_link(public_url, view.id), qr_svg_url=f"/v1/events/{view.id}/qr.svg")


@router.get("/cases", response_model=list[CaseOut])
async def my_cases(staff: ViewCase, governance: GovernanceDep) -> list[CaseOut]:
    return [_case(view) for view in await run_in_threadpool(governance.cases.visible, actor=staff)]


@router.post("/cases", response_model=CaseOut, status_code=201, responses=error_responses(409))
async def create_case(body: CaseIn, staff: CreateCase, governance: GovernanceDep) -> CaseOut:
    return _case(await run_in_threadpool(governance.cases.create, actor=staff, reference=body.reference,
                                         title=body.title))


@router.get("/cases/{case_id}", response_model=CaseOut, responses=error_responses(404))
async def read_case(case_id: str, staff: ViewCase, governance: GovernanceDep) -> CaseOut:
    return _case(await run_in_threadpool(governance.cases.get, actor=staff, case_id=case_id))


@router.put("/cases/{case_id}/investigators/{username}", response_model=CaseOut, responses=error_responses(404, 409))
async def assign(case_id: str, username: str, staff: AssignCase, governance: GovernanceDep) -> CaseOut:
    return _case(await run_in_threadpool(governance.cases.assign, actor=staff, case_id=case_id, username=username))


@router.delete("/cases/{case_id}/investigators/{username}", response_model=CaseOut, responses=error_responses(404, 409))
async def unassign(case_id: str, username: str, staff: AssignCase, governance: GovernanceDep) -> CaseOut:
    return _case(await run_in_threadpool(governance.cases.unassign, actor=staff, case_id=case_id, username=username))


@router.put("/cases/{case_id}/events/{event_id}", response_model=CaseOut, responses=error_responses(404, 409))
async def link_event(case_id: str, event_id: str, staff: AssignCase, governance: GovernanceDep) -> CaseOut:
    return _case(await run_in_threadpool(governance.cases.link_event, actor=staff, case_id=case_id,
                                         event_id=event_id))


@router.get("/events", response_model=list[EventOut])
async def my_events(staff: ViewCase, governance: GovernanceDep, settings: SettingsDep) -> list[EventOut]:
    views = await run_in_threadpool(governance.cases.visible_events, actor=staff)
    return [_event(view, settings.effective_public_url) for view in views]


@router.post("/events", response_model=EventOut, status_code=201, responses=error_responses(404, 409))
async def create_event(body: EventIn, staff: CreateEvent, governance: GovernanceDep, settings: SettingsDep
                       ) -> EventOut:
    try:
        view = await run_in_threadpool(
            governance.cases.create_event, actor=staff, case_id=body.case_id, name=body.name, lat=body.lat,
            lon=body.lon, radius_m=body.radius_m, starts_at=body.starts_at, ends_at=body.ends_at,
            retention_days=body.retention_days)
    except ValueError as error:  # the repository's own checks (window order), not a 500
        if isinstance(error, GovernanceConflict):
            raise
        raise GovernanceConflict(str(error)) from error
    return _event(view, settings.effective_public_url)


@router.put("/events/{event_id}/legal-hold", response_model=EventOut, responses=error_responses(404, 409))
async def place_hold(event_id: str, body: HoldIn, staff: LegalHoldStaff, governance: GovernanceDep,
                     settings: SettingsDep) -> EventOut:
    view = await run_in_threadpool(governance.cases.place_hold, actor=staff, event_id=event_id, reason=body.reason)
    return _event(view, settings.effective_public_url)


@router.delete("/events/{event_id}/legal-hold", response_model=EventOut, responses=error_responses(404, 409))
async def clear_hold(event_id: str, staff: LegalHoldStaff, governance: GovernanceDep, settings: SettingsDep
                     ) -> EventOut:
    view = await run_in_threadpool(governance.cases.clear_hold, actor=staff, event_id=event_id)
    return _event(view, settings.effective_public_url)


@router.put("/events/{event_id}/retention", response_model=EventOut, responses=error_responses(404, 409))
async def set_retention(event_id: str, body: RetentionIn, staff: RetentionStaff, governance: GovernanceDep,
                        settings: SettingsDep) -> EventOut:
    view = await run_in_threadpool(governance.cases.set_retention, actor=staff, event_id=event_id,
                                   retention_days=body.retention_days)
    return _event(view, settings.effective_public_url)


@router.post("/cases/{case_id}/fence-approvals", status_code=201, response_model=FenceApprovalOut,
             responses=error_responses(404, 409))
async def approve_fence(case_id: str, body: FenceApprovalIn, staff: ApproveFence,
                        governance: GovernanceDep) -> FenceApprovalOut:
    """A supervisor approves searches of this case with fences up to these limits (never their own searches)."""
    view = await run_in_threadpool(
        governance.approvals.grant, actor=staff, case_id=case_id, max_radius_m=body.max_radius_m,
        max_window_s=body.max_window_s, reason=body.reason, valid_for=timedelta(hours=body.valid_hours))
    return FenceApprovalOut.model_validate(view, from_attributes=True)


class SubjectIn(BaseModel):
    note: str | None = Field(default=None, max_length=500, description="why this is the case's subject")


class SubjectOut(BaseModel):
    detection_id: str
    kind: str = Field(description="face, vehicle or plate; a subject vehicle's plate stays readable too")
    photo_id: str
    photo_sha256: str
    note: str | None
    marked_by: str
    marked_at: datetime


def case_subjects(request: Request, governance: GovernanceDep, settings: SettingsDep) -> CaseSubjects:
    return CaseSubjects(sessions=governance.cases.sessions, audit=governance.audit,
                        client=request.app.state.s3_client, catalog_bucket=settings.s3.buckets.catalog)


SubjectsDep = Annotated[CaseSubjects, Depends(case_subjects)]


def _subjects(views: list[SubjectView]) -> list[SubjectOut]:
    return [SubjectOut.model_validate(view, from_attributes=True) for view in views]


@router.get("/cases/{case_id}/subjects", response_model=list[SubjectOut], responses=error_responses(404))
async def list_subjects(case_id: str, staff: ViewCase, subjects: SubjectsDep) -> list[SubjectOut]:
    """The detections named as this case's subject: its court bundle leaves them unblurred."""
    return _subjects(await run_in_threadpool(subjects.listed, actor=staff, case_id=case_id))


@router.put("/cases/{case_id}/subjects/{detection_id}", response_model=SubjectOut,
            responses=error_responses(404, 409, 503))
async def mark_subject(case_id: str, detection_id: str, staff: MarkSubject, subjects: SubjectsDep,
                       body: SubjectIn | None = None) -> SubjectOut:
    """Name a face, vehicle or plate detection (from search results) of one of the case's photos as its subject."""
    view = await run_in_threadpool(subjects.mark, actor=staff, case_id=case_id, detection_id=detection_id,
                                   note=body.note if body else None)
    return SubjectOut.model_validate(view, from_attributes=True)


@router.delete("/cases/{case_id}/subjects/{detection_id}", response_model=list[SubjectOut],
               responses=error_responses(404))
async def unmark_subject(case_id: str, detection_id: str, staff: MarkSubject, subjects: SubjectsDep
                         ) -> list[SubjectOut]:
    """Stop treating a detection as the case's subject; returns the remaining subjects."""
    return _subjects(await run_in_threadpool(subjects.unmark, actor=staff, case_id=case_id,
                                             detection_id=detection_id))
