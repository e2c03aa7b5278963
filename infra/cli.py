"""The `witness` console: one entry point for operators, data engineers and investigators.

    witness demo              # embedded stack, sample photos, receipts
    witness up                # local S3 server + API in the foreground
    witness serve             # the API alone (production)
    witness s3 start|stop     # the local S3 server alone
    witness db upgrade        # apply metadata migrations
    witness events create ... # open an incident for witness uploads

Settings come from WITNESS_* environment variables, read once here and passed down.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from infra import local_stack, s3server
from ingest_api.app import create_app
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.settings import ApiSettings

app = typer.Typer(help="Witness: crowd-sourced witness photos, extraction and fenced search.", no_args_is_help=True)
s3_app = typer.Typer(help="The embedded S3 server (SeaweedFS) for local use.", no_args_is_help=True)
db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
events_app = typer.Typer(help="Incidents that witnesses can send photos to.", no_args_is_help=True)
app.add_typer(s3_app, name="s3")
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
console = Console()


def _settings() -> ApiSettings:
    return ApiSettings()


@app.command()
def demo() -> None:
    """Start the embedded stack, upload sample witness photos through the API and print their receipts."""
    from infra.demo.run import run_demo

    settings = _settings()
    result = run_demo(settings, console)
    console.print(f"[green]{len(result.receipts)} photos stored and verified[/] for event {result.event_id}.")
    console.print(
        f"The local S3 server keeps running (data in {local_stack.s3_data_dir(settings)}); `witness s3 stop` ends it."
    )


@app.command()
def up() -> None:
    """Start the local S3 server (in local mode), migrate the database and serve the API in the foreground."""
    settings = _settings()
    local_stack.prepare(settings)
    console.print(f"API on http://{settings.host}:{settings.port} (docs at /docs); S3 at {settings.s3.endpoint}")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@app.command()
def serve() -> None:
    """Serve the API only (production: S3, database and migrations are managed outside)."""
    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port)


@s3_app.command("start")
def s3_start() -> None:
    settings = _settings()
    server = local_stack.start_local_s3(settings)
    console.print(f"S3 server ready at {server.endpoint} (pid {server.pid}, data {server.data_dir})")


@s3_app.command("stop")
def s3_stop() -> None:
    settings = _settings()
    stopped = s3server.stop(local_stack.s3_data_dir(settings))
    console.print("S3 server stopped" if stopped else "no S3 server was running")


@s3_app.command("status")
def s3_status() -> None:
    pid = s3server.running_pid(local_stack.s3_data_dir(_settings()))
    console.print(f"running (pid {pid})" if pid else "not running")
    raise typer.Exit(0 if pid else 1)


@db_app.command("upgrade")
def db_upgrade() -> None:
    settings = _settings()
    upgrade(settings.effective_database_url)
    console.print("database schema is up to date")


@events_app.command("create")
def events_create(
    name: Annotated[str, typer.Option(help="what happened, for investigators")],
    lat: Annotated[float, typer.Option(help="incident latitude, WGS84")],
    lon: Annotated[float, typer.Option(help="incident longitude, WGS84")],
    radius_m: Annotated[float, typer.Option(help="radius around the incident, metres")] = 1000.0,
    start: Annotated[datetime | None, typer.Option(help="window start (UTC unless an offset is given)")] = None,
    hours: Annotated[float, typer.Option(help="window length in hours")] = 6.0,
) -> None:
    settings = _settings()
    upgrade(settings.effective_database_url)
    starts_at = start or datetime.now(UTC)
    starts_at = starts_at if starts_at.tzinfo else starts_at.replace(tzinfo=UTC)
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            event = repository.create_event(
                session=session,
                name=name,
                lat=lat,
                lon=lon,
                radius_m=radius_m,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(hours=hours),
            )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        engine.dispose()
    console.print(f"event {event.id}: witnesses upload to /v1/events/{event.id}/photos")
