"""Staff sign-in: trade a username and password for a short-lived bearer token; who am I; log out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ingest_api.deps import limit_ip
from ingest_api.governance.auth import BearerToken, GovernanceDep, requires
from ingest_api.governance.policy import Action, Principal
from ingest_api.routes.errors import STAFF, error_responses

router = APIRouter(prefix="/v1/auth", tags=["staff authentication"])
Session = Annotated[Principal, Depends(requires(Action.OWN_SESSION))]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    username: str
    role: str


class MeOut(BaseModel):
    username: str
    role: str
    case_ids: list[str]


@router.post("/token", response_model=TokenOut, dependencies=[Depends(limit_ip)],
             responses=error_responses(401, 429))
async def login(body: LoginIn, governance: GovernanceDep) -> TokenOut:
    """Password login (argon2id); every attempt is audited. Send the token as `Authorization: Bearer ...`."""
    issued = await run_in_threadpool(governance.staff.login, username=body.username, password=body.password)
    return TokenOut(access_token=issued.token, expires_at=issued.expires_at, username=issued.username,
                    role=issued.role.value)


@router.get("/me", response_model=MeOut, responses=error_responses(*STAFF))
async def me(staff: Session) -> MeOut:
    return MeOut(username=staff.user_id, role=staff.role.value, case_ids=sorted(staff.assigned_cases))


@router.delete("/token", status_code=204, responses=error_responses(*STAFF))
async def logout(staff: Session, token: BearerToken, governance: GovernanceDep) -> None:
    await run_in_threadpool(governance.staff.revoke, token=token, actor=staff)
