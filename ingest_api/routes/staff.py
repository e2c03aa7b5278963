"""Staff administration (admins): accounts, roles, token issue and revocation. Every change is audited."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest_api.governance.auth import GovernanceDep, requires
from ingest_api.governance.policy import Action, Principal, Role
from ingest_api.routes.errors import STAFF, error_responses

router = APIRouter(prefix="/v1/staff", tags=["staff administration"], responses=error_responses(*STAFF))
Admin = Annotated[Principal, Depends(requires(Action.MANAGE_USERS))]


class StaffIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    role: Role
    password: str | None = Field(default=None, min_length=12, max_length=1000)


class RoleIn(BaseModel):
    role: Role


class StaffOut(BaseModel):
    username: str
    role: Role
    has_password: bool
    disabled: bool
    created_at: datetime


class IssuedOut(BaseModel):
    username: str
    role: Role
    token: str = Field(description="shown once; only its SHA-256 is stored")
    expires_at: datetime


@router.get("", response_model=list[StaffOut])
async def list_staff(_: Admin, governance: GovernanceDep) -> list[StaffOut]:
    views = await run_in_threadpool(governance.staff.all_staff)
    return [StaffOut.model_validate(view, from_attributes=True) for view in views]


@router.post("", response_model=IssuedOut, status_code=201, responses=error_responses(409))
async def create_staff(body: StaffIn, admin: Admin, governance: GovernanceDep) -> IssuedOut:
    issued = await run_in_threadpool(governance.staff.create, actor=admin, username=body.username, role=body.role,
                                     password=body.password)
    return IssuedOut.model_validate(issued, from_attributes=True)


@router.put("/{username}/role", status_code=204, responses=error_responses(404, 409))
async def change_role(username: str, body: RoleIn, admin: Admin, governance: GovernanceDep) -> None:
    await run_in_threadpool(governance.staff.set_role, actor=admin, username=username, role=body.role)


@router.post("/{username}/tokens", response_model=IssuedOut, status_code=201, responses=error_responses(404))
async def issue_token(username: str, admin: Admin, governance: GovernanceDep) -> IssuedOut:
    issued = await run_in_threadpool(governance.staff.issue_token, actor=admin, username=username)
    return IssuedOut.model_validate(issued, from_attributes=True)


@router.delete("/{username}/tokens", responses=error_responses(404))
async def revoke_tokens(username: str, admin: Admin, governance: GovernanceDep) -> dict[str, int]:
    revoked = await run_in_threadpool(governance.staff.revoke_all, actor=admin, username=username)
    return {"revoked": revoked}
