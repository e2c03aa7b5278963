"""The witness upload page (`/e/{event_id}`, the link in the appeal's QR code) and its assets.

Our own HTML/JS/CSS live in `ingest_api/web/`; tus-js-client is served from `node_modules`, installed by
`npm ci` from package.json/package-lock.json (never copied into this repository).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import FileResponse

from ingest_api.deps import SettingsDep
from ingest_api.services.sniff import RejectedUpload

router = APIRouter(tags=["witness page"], include_in_schema=False)
WEB = Path(__file__).resolve().parents[1] / "web"
VENDOR = {"tus.min.js": Path("tus-js-client/dist/tus.min.js")}
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/e/{event_id}")
async def upload_page(event_id: str) -> FileResponse:
    return FileResponse(WEB / "upload.html", media_type="text/html", headers=NO_CACHE)


@router.get("/assets/{name}")
async def asset(name: Literal["upload.js", "upload.css"]) -> FileResponse:
    return FileResponse(WEB / name, headers=NO_CACHE)


@router.get("/assets/vendor/{name}")
async def vendor_asset(name: Literal["tus.min.js"], settings: SettingsDep) -> FileResponse:
    path = settings.node_modules / VENDOR[name]
    if not path.is_file():
        raise RejectedUpload("page_not_built", f"{path} is missing: run `npm ci` at the project root", 503)
    return FileResponse(path, media_type="text/javascript")
