"""The `witness` console: one entry point for operators, data engineers and investigators.

    witness demo              # the whole product locally: staff, case, uploads, extraction, audited searches
    witness extract [--runner DaskRunner --beam-arg=--dask_client_address=127.0.0.1:8786] [--retry-failed]
    witness up                # local S3 server + API in the foreground
    witness serve             # the API alone (production)
    witness s3 start|stop     # the local S3 server alone
    witness db upgrade        # apply metadata migrations
    witness events create ... # open an incident for witness uploads
    witness verify            # re-hash every original against the manifests (ransomware / bit-rot check)
    witness audit verify      # check the audit chain against its sealed, locked copies
    witness staff create --username ines --role investigator [--password]   # prints a token once
    witness export CASE_ID [--out bundle.zip]   # court bundle: originals, SHA-256 manifest, audit, searches
    witness expire [--dry-run]                  # erase evidence of events past retention (legal holds win),
                                                # then their catalog records, index entries and old index versions

Settings come from WITNESS_* environment variables, read once here and passed down.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from infra import local_stack, s3server, search_cli
from ingest_api.app import create_app
from ingest_api.db import repository
from ingest_api.db.migrate import upgrade
from ingest_api.db.session import build_engine, session_factory
from ingest_api.services.links import qr_code, upload_link
from ingest_api.settings import ApiSettings

app = typer.Typer(help="Witness: crowd-sourced witness photos, extraction and fenced search.", no_args_is_help=True)
s3_app = typer.Typer(help="The embedded S3 server (SeaweedFS) for local use.", no_args_is_help=True)
db_app = typer.Typer(help="The metadata database.", no_args_is_help=True)
events_app = typer.Typer(help="Incidents that witnesses can send photos to.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(s3_app, name="s3")
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
app.add_typer(search_cli.search_app, name="search")
app.command("index")(search_cli.index_command)
staff_app = typer.Typer(help="Staff accounts, roles and tokens.", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
# Receipts carry full SHA-256 hashes: when output is piped or logged (CI), do not fold them into 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=200)


def _settings() -> ApiSettings:
    return ApiSettings()


def write_qr_codes(settings: ApiSettings, event_id: str, folder: Path | None = None) -> tuple[str, list[Path]]:
    """Write the event's upload-link QR code as SVG and PNG; returns the link and the files."""
    link = upload_link(settings.effective_public_url, event_id)
    folder = folder or settings.state_dir / "qr"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in ("svg", "png"):
        path = folder / f"event-{event_id}.{kind}"
        path.write_bytes(qr_code(link, kind))
        paths.append(path)
    return link, paths


@app.command()
def demo() -> None:
    """The whole product locally: staff, case, witness uploads, extraction, indexes, audited searches."""
    from infra.demo.accounts import DemoRefused
    from infra.demo.run import print_next_steps, run_demo

    settings = _settings()
    try:
        result = run_demo(settings, console)
    except DemoRefused as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    link, codes = write_qr_codes(settings, result.event_id)
    console.print(f"Witness upload link: {link}  (QR code: {', '.join(map(str, codes))})")
    sent = sum(receipt.status == "stored" for receipt in result.receipts)
    console.print(f"[green]Demo done in {result.seconds:.0f} s[/]: {len(result.receipts)} photos in the event "
                  f"({sent} sent now), {result.extracted.photos} extracted, {len(result.searches)} audited searches, "
                  f"audit chain {'intact' if result.audit.ok else 'BROKEN'}.")
    print_next_steps(settings, console)
    if not result.audit.ok:
        raise typer.Exit(1)


@app.command()
def extract(
    runner: Annotated[str, typer.Option(help="Beam runner: DirectRunner, DaskRunner, PortableRunner")] = "DirectRunner",
    models: Annotated[str | None, typer.Option(help="faces,objects,plates or none; default: all installed")] = None,
    beam_arg: Annotated[list[str] | None, typer.Option(help="extra Beam flag (repeatable); infra/RUNNERS.md")] = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed",
        help="also extract again the photos on which one of these model families raised (model_failed), "
             "e.g. after the family was fixed")] = False,
) -> None:
    """Extract place, time, thumbnails (and detections) from every photo not yet processed."""
    from beam_jobs.pipeline.launcher import parse_models, run_extract, summary_table
    from beam_jobs.pipeline.lease import LeaseHeld
    from beam_jobs.pipeline.settings import ExtractSettings

    settings = _settings()
    if settings.mode == "local":
        local_stack.start_local_s3(settings)
    try:
        summary = run_extract(
            ExtractSettings(), runner=runner, beam_args=beam_arg or [], models=parse_models(models), console=console,
            retry_failed=retry_failed,
        )
    except LeaseHeld as error:
        console.print(f"[red]not started:[/red] {error}")
        raise typer.Exit(3) from error
    console.print(summary_table(summary))


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
    retention_days: Annotated[int, typer.Option(help="how long witness photos are kept")] = 365,
    qr_dir: Annotated[Path | None, typer.Option(help="where to write the QR codes (default: state dir/qr)")] = None,
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
                retention_days=retention_days,
            )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        engine.dispose()
    link, codes = write_qr_codes(settings, event.id, qr_dir)
    console.print(f"event {event.id}: witness upload link {link}")
    console.print(f"QR codes for the appeal: {', '.join(map(str, codes))}")


@app.command("verify")
def verify_evidence() -> None:
    """Re-hash every original in the evidence bucket against the manifests; exit 1 on any problem."""
    from infra.evidence_audit import verify_with_progress
    from infra.storage.client import build_client

    settings = _settings()
    report = verify_with_progress(build_client(settings.s3), settings.s3.buckets.evidence, console)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain in the database against itself and its sealed copies; exit 1 on any problem."""
    from infra.storage.client import build_client
    from ingest_api.governance.audit_store import AuditLog, AuditStoreError
    from ingest_api.governance.seals import SealTarget
    from ingest_api.governance.verify import print_verification, verify_audit_log

    settings = _settings()
    engine = build_engine(settings.effective_database_url)
    try:
        target = SealTarget(bucket=settings.s3.buckets.audit)
        result = verify_audit_log(AuditLog(engine), build_client(settings.s3), target)
    except AuditStoreError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    finally:
        engine.dispose()
    print_verification(result, console)
    raise typer.Exit(0 if result.ok else 1)


def _operator() -> str:
    """Who ran a server-side command, for the audit log (the OS account: these commands need server access)."""
    import getpass

    return f"cli:{getpass.getuser()}"


@staff_app.command("create")
def staff_create(
    username: Annotated[str, typer.Option(help="login name")],
    role: Annotated[str, typer.Option(help="investigator, supervisor, auditor or admin")],
    password: Annotated[bool, typer.Option("--password", help="also set a password (prompted, for web login)")] = False,
) -> None:
    """Create a staff account and print its first bearer token, once (only its SHA-256 is stored)."""
    from ingest_api.governance.policy import Principal, Role
    from ingest_api.governance.service import build_governance
    from ingest_api.governance.staff import GovernanceConflict

    try:
        chosen = Role(role)
    except ValueError as error:
        raise typer.BadParameter(f"role must be one of {', '.join(r.value for r in Role)}, got {role!r}") from error
    secret = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    settings = _settings()
    upgrade(settings.effective_database_url)
    engine = build_engine(settings.effective_database_url)
    try:
        governance = build_governance(settings, sessions=session_factory(engine), engine=engine)
        issued = governance.staff.create(actor=Principal(_operator(), Role.ADMIN), username=username, role=chosen,
                                         password=secret)
    except GovernanceConflict as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        engine.dispose()
    until = f"{issued.expires_at:%Y-%m-%d}"
    console.print(f"{issued.username} ({issued.role.value}); token, shown once, valid until {until}:")
    typer.echo(issued.token)


@app.command("export")
def export_case(
    case_id: Annotated[str, typer.Argument(help="the case id (GET /v1/cases)")],
    out: Annotated[Path | None, typer.Option(help="zip to write (default: state dir/exports/case-ID.zip)")] = None,
) -> None:
    """Write the court bundle of a case: originals, SHA-256 manifest, manifests, signed receipts, audit entries,
    searches, models; faces and plates blurred in the viewing copies except the case's subjects."""
    from infra.storage.client import build_client
    from ingest_api.governance.audit_store import AuditLog
    from ingest_api.governance.bundle import CaseBundler
    from ingest_api.governance.staff import GovernanceNotFound
    from ingest_api.services.submissions import SubmissionService

    settings = _settings()
    engine = build_engine(settings.effective_database_url)
    target = out or settings.state_dir / "exports" / f"case-{case_id}.zip"
    try:
        client, sessions = build_client(settings.s3), session_factory(engine)
        receipts = SubmissionService(client=client, buckets=settings.s3.buckets, sessions=sessions,
                                     receipt_key=settings.receipt_key.get_secret_value().encode(),
                                     receipt_key_id=settings.receipt_key_id)
        bundler = CaseBundler(client=client, buckets=settings.s3.buckets, sessions=sessions, audit=AuditLog(engine),
                              max_pixels=settings.max_pixels, receipt_of=receipts.receipt_of)
        summary = bundler.write(case_id=case_id, actor=_operator(), role="operator", out=target)
    except GovernanceNotFound as error:
        raise typer.BadParameter(str(error)) from error
    finally:
        engine.dispose()
    console.print(f"{summary.path}: {summary.originals} originals, sha256 {summary.sha256}")


@app.command("expire")
def expire(dry_run: Annotated[bool, typer.Option(help="only list the events that are due")] = False) -> None:
    """Erase the evidence of events past their retention, except under legal hold, then the catalog records,
    index entries and old index versions of every erased event and withdrawn submission; all audited."""
    from infra.storage.client import build_client
    from ingest_api.governance.audit_store import AuditLog
    from ingest_api.governance.erasure import ErasureFollowUp, ErasureReport, IndexTarget
    from ingest_api.governance.retention import RetentionJob
    from ingest_api.services.search import INDEX_CACHE_DIR

    settings = _settings()
    engine = build_engine(settings.effective_database_url)
    report: ErasureReport | None = None
    try:
        client, sessions, audit = build_client(settings.s3), session_factory(engine), AuditLog(engine)
        job = RetentionJob(client=client, buckets=settings.s3.buckets, sessions=sessions, audit=audit)
        outcomes = job.run(actor=_operator(), role="operator", dry_run=dry_run)
        if not dry_run:  # the same folders as `witness index` and the API's cache on this host
            target = IndexTarget(work_dir=settings.state_dir / "index-build",
                                 cache_root=settings.state_dir / INDEX_CACHE_DIR)
            report = ErasureFollowUp(client=client, buckets=settings.s3.buckets, sessions=sessions, audit=audit,
                                     index=target).run(actor=_operator(), role="operator")
    finally:
        engine.dispose()
    for outcome in outcomes:
        console.print(f"{outcome.event_id}: {outcome.status}, {len(outcome.originals)} originals, "
                      f"{outcome.manifests} manifests, {outcome.derived} derived images erased"
                      + (f"; kept under object hold: {len(outcome.kept_under_object_hold)}"
                         if outcome.kept_under_object_hold else ""))
    if not outcomes:
        console.print("no event is past its retention")
    if report is not None:
        catalog = report.catalog
        if catalog is not None:
            console.print(f"catalog: {len(catalog.replaced)} runs replaced by redacted copies, "
                          f"{sum(catalog.rows_removed.values())} rows and {catalog.derived_deleted} derived images "
                          f"erased, {catalog.object_versions_deleted} old object versions deleted")
        console.print(f"index versions deleted: {sum(len(o.deleted_versions) for o in report.pruned)}")
        for line in report.pending:
            console.print(f"[yellow]pending[/] {line}")
        for line in report.failed:
            console.print(f"[red]failed (run again)[/] {line}")
        if report.failed:
            raise typer.Exit(1)
