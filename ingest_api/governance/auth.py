"""HTTP side of governance: bearer-token authentication, per-route action declarations and error mapping.

    @router.post("/cases")
    async def create_case(body: CaseIn, staff: Annotated[Principal, Depends(requires(Action.CREATE_CASE))], ...)

`requires(action)` is the only way a staff route gets a principal: it authenticates (401 without a valid token) and
checks the role table (403, default deny). The action is kept on the dependency (`declared_action`) so the
authorization-matrix test can read every route's declaration from `app.routes`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from ingest_api.governance.approvals import FenceApprovals
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.cases import CaseService
from ingest_api.governance.policy import Action, ApprovalRequired, InvalidSearch, PermissionDenied, Principal, require
from ingest_api.governance.staff import GovernanceConflict, GovernanceNotFound, NotAuthenticated, StaffService

_bearer = HTTPBearer(auto_error=False, description="a staff token (`POST /v1/auth/token` or `witness staff create`)")


@dataclass(frozen=True)
class Governance:
    """The governance services the API holds on `app.state.governance`."""

    audit: AuditLog
    staff: StaffService
    cases: CaseService
    approvals: FenceApprovals


def get_governance(request: Request) -> Governance:
    governance: Governance = request.app.state.governance
    return governance


GovernanceDep = Annotated[Governance, Depends(get_governance)]


def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise NotAuthenticated("send `Authorization: Bearer <staff token>`")
    return credentials.credentials


BearerToken = Annotated[str, Depends(bearer_token)]


async def current_staff(token: BearerToken, governance: GovernanceDep) -> Principal:
    return await run_in_threadpool(governance.staff.authenticate, token)


CurrentStaff = Annotated[Principal, Depends(current_staff)]


def requires(action: Action) -> Callable[..., Any]:
    """A dependency giving the authenticated principal, refused (403) unless its role may perform `action`."""

    async def dependency(staff: CurrentStaff) -> Principal:
        return require(staff, action)

    dependency.declared_action = action  # type: ignore[attr-defined]
    dependency.__name__ = f"requires_{action.value}"
    return dependency


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


def register_error_handlers(app: FastAPI) -> None:
    """Map governance errors to `{code, message}` responses."""

    async def unauthenticated(_: Request, error: Exception) -> JSONResponse:
        return _error(401, "not_authenticated", str(error), {"WWW-Authenticate": "Bearer"})

    async def denied(_: Request, error: Exception) -> JSONResponse:
        return _error(403, "forbidden", str(error))

    async def approval(_: Request, error: Exception) -> JSONResponse:
        return _error(403, "approval_required", str(error))

    async def invalid(_: Request, error: Exception) -> JSONResponse:
        return _error(422, "invalid_request", str(error))

    async def not_found(_: Request, error: Exception) -> JSONResponse:
        return _error(404, "not_found", str(error.args[0] if error.args else error))

    async def conflict(_: Request, error: Exception) -> JSONResponse:
        return _error(409, "conflict", str(error))

    app.add_exception_handler(NotAuthenticated, unauthenticated)
    app.add_exception_handler(PermissionDenied, denied)
    app.add_exception_handler(ApprovalRequired, approval)
    app.add_exception_handler(InvalidSearch, invalid)
    app.add_exception_handler(GovernanceNotFound, not_found)
    app.add_exception_handler(GovernanceConflict, conflict)
