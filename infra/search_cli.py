"""`witness index` and `witness search ...`: build/publish the indexes and run fenced searches from a terminal.

    witness index                                  # add new extraction runs, drop withdrawn photos, publish
    witness search plates RK-87* --lat 51.5007 --lon -0.1246 --radius-m 800 \
        --start 2025-03-22T14:00Z --end 2025-03-22T16:00Z --exclude-unplaced --include-untimed
    witness search faces --image crop.jpg ... ; witness search vehicles "black car" ... ; witness search similar ID ...

Every search needs a place (`--lat/--lon/--radius-m` or `--polygon "lat,lon;lat,lon;..."`), a time window
and an explicit choice for photos without a trusted position or time. The logic lives in
`indexers.index_job` and `ingest_api.services.search`; this module only parses options and prints.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, select

from indexers.catalog_index import INDEX_KINDS
from indexers.fence import Circle, Fence, FenceError, Polygon, TimeWindow
from indexers.index_job import index_catalog
from infra.storage.client import build_client
from ingest_api.db.migrate import upgrade
from ingest_api.db.models import Submission
from ingest_api.db.session import build_engine, session_factory
from ingest_api.governance.tables import EventErasure
from ingest_api.services.search import SearchContext, SearchOutcome, SearchService
from ingest_api.settings import ApiSettings

search_app = typer.Typer(help="Fenced searches over the published indexes.", no_args_is_help=True)
# Ids and presigned URLs are long: never fold them when output is piped or captured.
console = Console() if sys.stdout.isatty() else Console(width=400)


def withdrawn_submission_ids(settings: ApiSettings) -> set[str]:
    """Submissions whose photos must leave the indexes: withdrawn by their witness, or of an erased event."""
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            gone = or_(Submission.withdrawn_at.is_not(None), Submission.event_id.in_(select(EventErasure.event_id)))
            return set(session.scalars(select(Submission.id).where(gone)))
    finally:
        engine.dispose()


def index_command(
    rebuild: Annotated[bool, typer.Option(help="build every kind from all committed runs")] = False,
    kind: Annotated[list[str] | None, typer.Option(help=f"only these kinds ({', '.join(INDEX_KINDS)})")] = None,
) -> None:
    """Bring the indexes up to date with the committed extraction runs and publish new versions."""
    settings = ApiSettings()
    outcomes = index_catalog(
        build_client(settings.s3), settings.s3.buckets.catalog, kinds=tuple(kind or INDEX_KINDS),
        work_dir=settings.state_dir / "index-build", cache_root=settings.state_dir / "index-cache",
        withdrawn_submission_ids=withdrawn_submission_ids(settings), rebuild=rebuild)
    table = Table("kind", "action", "version", "detections", "runs added", "photos removed")
    for o in outcomes:
        table.add_row(o.kind, o.action, o.version or "-", str(o.count), ",".join(o.added_runs), str(o.removed_photos))
    console.print(table)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _fence(lat: float | None, lon: float | None, radius_m: float | None, polygon: str | None, start: datetime,
           end: datetime, include_unplaced: bool, include_untimed: bool) -> Fence:
    try:
        area: Circle | Polygon
        if polygon and lat is None and lon is None:
            points = [tuple(float(v) for v in pair.split(",")) for pair in polygon.split(";") if pair.strip()]
            area = Polygon(tuple(p[0] for p in points), tuple(p[1] for p in points))
        elif not polygon and lat is not None and lon is not None and radius_m is not None:
            area = Circle(lat, lon, radius_m)
        else:
            raise typer.BadParameter("give either --lat, --lon and --radius-m, or --polygon")
        return Fence(area=area, window=TimeWindow(_utc(start), _utc(end)), include_unplaced=include_unplaced,
                     include_untimed=include_untimed)
    except (FenceError, ValueError, IndexError) as error:
        raise typer.BadParameter(str(error)) from error


def _print(outcome: SearchOutcome) -> None:
    console.print(f"{outcome.query}: {len(outcome.hits)} results from {outcome.candidates} fenced candidates "
                  f"(index {outcome.kind}@{outcome.index_version})")
    table = Table("q", "rank", "score", "photo", "detection", "taken (UTC)", "lat,lon", "place")
    for hit in outcome.hits:
        table.add_row(str(hit.query_index), str(hit.rank), f"{hit.score:.3f}", hit.photo_id, hit.detection_id,
                      hit.taken_at_utc.isoformat() if hit.taken_at_utc else "?",
                      f"{hit.lat:.5f},{hit.lon:.5f}" if hit.lat is not None and hit.lon is not None else "?",
                      hit.place_name or "")
    console.print(table)
    for hit in outcome.hits:
        console.print(f"{hit.query_index}.{hit.rank} crop: {hit.crop_url}  thumbnail: {hit.thumbnail_url}",
                      soft_wrap=True)


Lat = Annotated[float | None, typer.Option(help="fence centre latitude")]
Lon = Annotated[float | None, typer.Option(help="fence centre longitude")]
Radius = Annotated[float | None, typer.Option(help="fence radius in metres")]
PolygonOpt = Annotated[str | None, typer.Option(help="fence polygon 'lat,lon;lat,lon;lat,lon'")]
Start = Annotated[datetime, typer.Option(help="window start (UTC unless an offset is given)")]
End = Annotated[datetime, typer.Option(help="window end, exclusive")]
Unplaced = Annotated[bool, typer.Option("--include-unplaced/--exclude-unplaced", help="photos without position")]
Untimed = Annotated[bool, typer.Option("--include-untimed/--exclude-untimed", help="photos without capture time")]
Limit = Annotated[int, typer.Option(min=1, max=500, help="results (per query face/vehicle)")]
Case = Annotated[str | None, typer.Option(help="case id, for the audit record")]


def _service() -> SearchService:
    settings = ApiSettings()
    service = SearchService.from_settings(settings.s3, client=build_client(settings.s3), state_dir=settings.state_dir)
    service.refresh()
    return service


@search_app.command("faces")
def search_faces(image: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="photo or face crop")],
                 start: Start, end: End, include_unplaced: Unplaced, include_untimed: Untimed, lat: Lat = None,
                 lon: Lon = None, radius_m: Radius = None, polygon: PolygonOpt = None, limit: Limit = 10,
                 case_id: Case = None) -> None:
    """Faces like the ones in IMAGE."""
    fence = _fence(lat, lon, radius_m, polygon, start, end, include_unplaced, include_untimed)
    _print(_service().by_image("face", image.read_bytes(), fence=fence, k=limit, context=SearchContext(case_id)))


@search_app.command("vehicles")
def search_vehicles(description: Annotated[str, typer.Argument(help="class and/or colour: 'black car'")],
                    start: Start, end: End, include_unplaced: Unplaced, include_untimed: Untimed, lat: Lat = None,
                    lon: Lon = None, radius_m: Radius = None, polygon: PolygonOpt = None, limit: Limit = 20,
                    case_id: Case = None) -> None:
    """Vehicles by class and colour."""
    fence = _fence(lat, lon, radius_m, polygon, start, end, include_unplaced, include_untimed)
    _print(_service().vehicles(description, fence=fence, limit=limit, context=SearchContext(case_id)))


@search_app.command("plates")
def search_plates(plate: Annotated[str, typer.Argument(help="plate, partial with * and ?, e.g. 'RK-87*'")],
                  start: Start, end: End, include_unplaced: Unplaced, include_untimed: Untimed, lat: Lat = None,
                  lon: Lon = None, radius_m: Radius = None, polygon: PolygonOpt = None, limit: Limit = 20,
                  case_id: Case = None) -> None:
    """Licence plates, tolerant of OCR look-alikes (0/O/D, 1/I/L, 8/B, 5/S, 2/Z)."""
    fence = _fence(lat, lon, radius_m, polygon, start, end, include_unplaced, include_untimed)
    _print(_service().plates(plate, fence=fence, limit=limit, context=SearchContext(case_id)))


@search_app.command("similar")
def search_similar(detection_id: Annotated[str, typer.Argument(help="a detection id from an earlier search")],
                   start: Start, end: End, include_unplaced: Unplaced, include_untimed: Untimed, lat: Lat = None,
                   lon: Lon = None, radius_m: Radius = None, polygon: PolygonOpt = None, limit: Limit = 10,
                   case_id: Case = None) -> None:
    """More like an existing detection."""
    fence = _fence(lat, lon, radius_m, polygon, start, end, include_unplaced, include_untimed)
    _print(_service().more_like(detection_id, fence=fence, k=limit, context=SearchContext(case_id)))
