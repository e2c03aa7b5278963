"""The investigator console (`/console`): one static page of our own HTML/JS/CSS calling the JSON API.

Everything the console shows comes from the governed routes (`/v1/auth`, `/v1/cases`, `/v1/events`,
`/v1/search/*`): the page holds a staff token in sessionStorage and never gets more than the API gives it.
The page and its assets are public (they carry no data); `/console/config` needs a signed-in staff member
because a connected deployment's tile URL may embed a provider key.

The map works without any tile server (points on an equirectangular plane). A connected deployment can
name one with `WITNESS_CONSOLE_TILE_URL` (e.g. `https://tiles.example/{z}/{x}/{y}.png`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ingest_api.deps import SettingsDep
from ingest_api.governance.auth import requires
from ingest_api.governance.policy import Action, Principal
from ingest_api.settings import ApiSettings

router = APIRouter(prefix="/console", tags=["investigator console"], include_in_schema=False)
CONSOLE = Path(__file__).resolve().parents[1] / "console"
AssetName = Literal["console.js", "console.css", "api.js", "map.js", "timeline.js", "results.js", "search.js"]
#: The page runs only our own scripts and talks only to this API; images may come from the S3 endpoint's
#: presigned URLs and from a configured tile server, so `img-src` is the one open directive.
SECURITY_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data: blob: "
        "http: https:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# The extraction job's thumbnails fit this square (beam_jobs/extraction/thumbnails.py DEFAULT_MAX_SIDE): a
# thumbnail smaller than it is the whole photo at full size, so detection boxes can be drawn without the photo size.
THUMBNAIL_MAX_SIDE = 512
Staff = Annotated[Principal, Depends(requires(Action.OWN_SESSION))]


class ConsoleConfig(BaseModel):
    """What the page needs to know about this deployment."""

    tile_url: str = Field(default="", description="`{z}/{x}/{y}` tile URL template; empty: no tiles (air-gapped)")
    tile_attribution: str = ""
    thumbnail_max_side: int = THUMBNAIL_MAX_SIDE
    fence_max_radius_m: float
    fence_max_window_s: float


def console_config(settings: ApiSettings) -> ConsoleConfig:
    return ConsoleConfig(
        tile_url=settings.console_tile_url,
        tile_attribution=settings.console_tile_attribution,
        fence_max_radius_m=settings.fence_max_radius_m,
        fence_max_window_s=settings.fence_max_window_s,
    )


def get_console_config(settings: SettingsDep) -> ConsoleConfig:
    return console_config(settings)


ConfigDep = Annotated[ConsoleConfig, Depends(get_console_config)]


@router.get("")
async def console_page() -> FileResponse:
    return FileResponse(CONSOLE / "console.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/assets/{name}")
async def console_asset(name: AssetName) -> FileResponse:
    media_type = "text/javascript" if name.endswith(".js") else "text/css"
    return FileResponse(CONSOLE / name, media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/config", response_model=ConsoleConfig)
async def config(staff: Staff, config: ConfigDep) -> ConsoleConfig:
    return config
