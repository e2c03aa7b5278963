"""`witness demo`: bring up the embedded stack, create an incident, upload sample witness photos, show receipts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from infra import local_stack
from infra.demo.samples import demo_photos, encode_jpeg
from ingest_api.db import repository
from ingest_api.db.session import build_engine, session_factory
from ingest_api.settings import ApiSettings

# Place de la République, Paris, on the evening of 13 November 2015.
INCIDENT_LAT, INCIDENT_LON = 48.8674, 2.3636
INCIDENT_START = datetime(2015, 11, 13, 20, 30, tzinfo=UTC)


@dataclass(frozen=True)
class DemoResult:
    event_id: str
    receipts: list[dict[str, object]]


class DemoUploadFailed(Exception):
    """An upload was refused; the demo stops and says why."""


@retry(
    retry=retry_if_exception_type(httpx.TransportError),
    stop=stop_after_attempt(5),
    wait=wait_exponential(multiplier=0.5, max=8),
    reraise=True,
)
def _upload(client: httpx.Client, url: str, data: bytes, token: str | None) -> dict[str, object]:
    headers = {"Content-Type": "image/jpeg", **({"X-Submission-Token": token} if token else {})}
    response = client.post(url, content=data, headers=headers)
    if response.status_code != 201:
        raise DemoUploadFailed(f"upload refused ({response.status_code}): {response.text}")
    receipt: dict[str, object] = response.json()
    return receipt


def create_demo_event(settings: ApiSettings) -> str:
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            event = repository.create_event(
                session=session,
                name="Demo: Paris, 13 November 2015",
                lat=INCIDENT_LAT,
                lon=INCIDENT_LON,
                radius_m=1500,
                starts_at=INCIDENT_START,
                ends_at=INCIDENT_START + timedelta(hours=4),
            )
            return event.id
    finally:
        engine.dispose()


def run_demo(settings: ApiSettings, console: Console) -> DemoResult:
    local_stack.prepare(settings)
    event_id = create_demo_event(settings)
    photos = demo_photos(INCIDENT_LAT, INCIDENT_LON, INCIDENT_START + timedelta(minutes=10))
    receipts: list[dict[str, object]] = []
    with (
        local_stack.api_in_background(settings) as base_url,
        httpx.Client(timeout=60) as client,
        Progress(console=console, transient=True) as progress,
    ):
        task = progress.add_task("uploading witness photos", total=len(photos))
        url = f"{base_url}/v1/events/{event_id}/photos"
        tokens: dict[int, str] = {}
        for index, photo in enumerate(photos):
            witness = index % 3  # three witnesses, two photos each
            receipt = _upload(client, url, encode_jpeg(photo, seed=index), tokens.get(witness))
            if isinstance(receipt.get("submission_token"), str):
                tokens[witness] = str(receipt["submission_token"])
            receipts.append({"file": photo.name, **receipt})
            progress.advance(task)
    table = Table(title=f"Receipts for event {event_id}")
    for column in ("file", "submission", "sha256", "bytes", "received (UTC)"):
        table.add_column(column, overflow="fold")
    for receipt in receipts:
        table.add_row(
            str(receipt["file"]),
            str(receipt["submission_id"])[:8],
            str(receipt["sha256"]),
            str(receipt["size"]),
            str(receipt["received_at"]),
        )
    console.print(table)
    show_extraction(settings, event_id, console)
    return DemoResult(event_id, receipts)


def show_extraction(settings: ApiSettings, event_id: str, console: Console) -> None:
    """Run the extraction job on what is pending and print where and when each demo photo was taken."""
    from beam_jobs.pipeline.catalog import read_committed
    from beam_jobs.pipeline.launcher import run_extract
    from beam_jobs.pipeline.settings import ExtractSettings
    from infra.storage.client import build_client

    extract_settings = ExtractSettings(s3=settings.s3)
    summary = run_extract(extract_settings, runner="DirectRunner", console=console)
    client = build_client(settings.s3)
    photos = read_committed(client, settings.s3.buckets.catalog).to_pylist()
    detections = read_committed(client, settings.s3.buckets.catalog, "detections").to_pylist()
    found: dict[str, list[str]] = {}
    for det in detections:
        attributes = json.loads(det["attributes"])
        found.setdefault(det["photo_id"], []).append(str(attributes.get("plate_text") or attributes.get("class")))
    table = Table(title=f"Extracted (run {summary.run_id or 'none new'}): where and when, and how we know")
    for column in ("photo", "lat, lon", "position from", "taken (UTC)", "time from", "place", "detected"):
        table.add_column(column, overflow="fold")
    for row in sorted((r for r in photos if r["event_id"] == event_id), key=lambda r: str(r["taken_at_utc"])):
        position = "-" if row["lat"] is None else f"{row['lat']:.5f}, {row['lon']:.5f}"
        table.add_row(str(row["photo_id"])[:8], position, str(row["position_source"]), str(row["taken_at_utc"]),
                      str(row["time_source"]), str(row["place_name"] or "-"),
                      ", ".join(found.get(str(row["photo_id"]), [])) or "-")
    console.print(table)
