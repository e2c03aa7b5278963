"""The governance gate in front of `/v1/search/*` (a router dependency, so the search routes stay as they are).

Before any search runs it: authenticates, checks the role (SEARCH), requires `case_id` and a `legal_basis`, checks
the principal may work on that case, refuses fences (circles, or polygons by their enclosing circle) beyond the
configured limits unless the search names a valid supervisor's approval covering them (`approval_id`, see
`approvals.py`), and appends a `search` audit entry with the exact request parameters (an image query is recorded
by its SHA-256, not its pixels).
The result ids each search showed are appended by the search routes (`search_results` entries).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from indexers.fence import haversine_m
from ingest_api.governance.approvals import FenceApprovals
from ingest_api.governance.audit import AuditRecord
from ingest_api.governance.auth import GovernanceDep, requires
from ingest_api.governance.policy import (
    Action,
    ApprovalRequired,
    Fence,
    FenceLimits,
    InvalidSearch,
    Principal,
    authorize_search,
    fence_excess,
    require_case,
)

Searcher = Annotated[Principal, Depends(requires(Action.SEARCH))]


def _parameters(body: dict[str, Any]) -> dict[str, Any]:
    recorded = {k: v for k, v in body.items() if k != "image_base64"}
    if isinstance(image := body.get("image_base64"), str):
        try:
            recorded["image_sha256"] = hashlib.sha256(base64.b64decode(image, validate=True)).hexdigest()
        except binascii.Error:
            recorded["image_sha256"] = None  # the route answers 422 for it
    return recorded


def enclosing_circle(vertices: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(lat, lon, radius_m) of a circle holding every vertex: centre = normalised mean of the vertices' unit
    vectors (right across the antimeridian), radius = the farthest vertex. Enough to apply the size limits."""
    lat, lon = np.radians([v[0] for v in vertices]), np.radians([v[1] for v in vertices])
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]).mean(axis=1)
    centre_lat = float(np.degrees(np.arctan2(xyz[2], np.hypot(xyz[0], xyz[1]))))
    centre_lon = float(np.degrees(np.arctan2(xyz[1], xyz[0])))
    radius = float(np.max(haversine_m(np.degrees(lat), np.degrees(lon), centre_lat, centre_lon)))
    return centre_lat, centre_lon, radius


def _fence_for_limits(fence: dict[str, Any]) -> Fence:
    """The fence as the policy sizes it; raises KeyError/TypeError/ValueError when malformed."""
    circle, polygon = fence.get("circle"), fence.get("polygon")
    if isinstance(circle, dict):
        lat, lon, radius = float(circle["lat"]), float(circle["lon"]), float(circle["radius_m"])
    elif isinstance(polygon, list) and len(polygon) >= 3:
        lat, lon, radius = enclosing_circle([(float(p[0]), float(p[1])) for p in polygon])
    else:
        raise ValueError("no circle or polygon")
    return Fence(lat, lon, radius, datetime.fromisoformat(fence["start"]), datetime.fromisoformat(fence["end"]))


def _check_fence(body: dict[str, Any], limits: FenceLimits, staff: Principal, approvals: FenceApprovals) -> None:
    fence = body.get("fence") if isinstance(body.get("fence"), dict) else None
    if fence is None:
        return  # the route answers 422
    try:
        checked = _fence_for_limits(fence)
        reasons = fence_excess(checked, limits)
    except (KeyError, TypeError, ValueError, IndexError):
        return  # the route answers 422 with the precise validation error
    if not reasons:
        return
    approval_id = body.get("approval_id")
    approval = approvals.valid(approval_id) if isinstance(approval_id, str) and approval_id else None
    if approval is None:
        raise ApprovalRequired(reasons if approval_id is None else [*reasons, "the approval is unknown or expired"])
    authorize_search(staff, case_id=str(body.get("case_id")), legal_basis=str(body.get("legal_basis")),
                     fence=checked, limits=limits, approval=approval)


async def govern_search(request: Request, staff: Searcher, governance: GovernanceDep) -> Principal:
    if request.method != "POST":
        return staff
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as error:
        raise InvalidSearch(f"the search body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidSearch("the search body must be a JSON object")
    case_id, legal_basis = str(body.get("case_id") or ""), str(body.get("legal_basis") or "")
    if not case_id.strip():
        raise InvalidSearch("a search needs a case_id")
    if not legal_basis.strip():
        raise InvalidSearch("a search needs a legal_basis (free text, e.g. the order or article it relies on)")
    require_case(staff, Action.SEARCH, case_id)
    settings = request.app.state.settings
    limits = FenceLimits(settings.fence_max_radius_m, settings.fence_max_window_s)
    await run_in_threadpool(_check_fence, body, limits, staff, governance.approvals)
    await run_in_threadpool(governance.audit.append, AuditRecord(
        actor=staff.user_id, role=staff.role.value, action="search", case_id=case_id,
        parameters={"path": request.url.path, **_parameters(body)}))
    return staff


govern_search.declared_action = Action.SEARCH  # type: ignore[attr-defined]
