"""The data engineer's part of the demo: run the extraction job on what is pending, then build the indexes.

Prints where and when each demo photo was taken (and how we know) with what the models found, and which index
versions were published. Re-running finds nothing new to extract and leaves the indexes unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from ingest_api.settings import ApiSettings


@dataclass(frozen=True)
class Extracted:
    run_id: str | None  # None when nothing was pending
    photos: int  # photo records of the demo event in the catalog
    found: dict[str, list[str]]  # photo id -> what the models found ("face", "black car", "GH417KT"...)


def _label(kind: str, attributes: dict[str, object]) -> str:
    if kind == "plate":
        return str(attributes.get("plate_text") or "plate")
    if kind == "vehicle":
        return f"{attributes.get('colour', '')} {attributes.get('class', 'vehicle')}".strip()
    return kind


def extract(settings: ApiSettings, event_id: str, names: dict[str, str], console: Console) -> Extracted:
    """Extract pending photos (DirectRunner, every installed model) and print the event's records."""
    from beam_jobs.pipeline.catalog import read_committed
    from beam_jobs.pipeline.launcher import run_extract
    from beam_jobs.pipeline.settings import ExtractSettings
    from infra.storage.client import build_client

    summary = run_extract(ExtractSettings(s3=settings.s3), runner="DirectRunner", console=console)
    client = build_client(settings.s3)
    photos = [r for r in read_committed(client, settings.s3.buckets.catalog).to_pylist() if r["event_id"] == event_id]
    ids = {str(r["photo_id"]) for r in photos}
    found: dict[str, list[str]] = {}
    for det in read_committed(client, settings.s3.buckets.catalog, "detections").to_pylist():
        if det["photo_id"] in ids:
            found.setdefault(det["photo_id"], []).append(_label(det["kind"], json.loads(det["attributes"])))
    table = Table(title=f"Extracted (run {summary.run_id or 'none new'}): where and when, and how we know")
    for column in ("photo", "lat, lon", "position from", "taken (UTC)", "time from", "place", "detected"):
        table.add_column(column, overflow="fold")
    for row in sorted(photos, key=lambda r: str(r["taken_at_utc"])):
        position = "-" if row["lat"] is None else f"{row['lat']:.5f}, {row['lon']:.5f}"
        table.add_row(names.get(str(row["photo_id"]), str(row["photo_id"])[:8]), position, str(row["position_source"]),
                      f"{row['taken_at_utc']:%Y-%m-%d %H:%M}" if row["taken_at_utc"] else "-", str(row["time_source"]),
                      str(row["place_name"] or "-"), ", ".join(sorted(found.get(str(row["photo_id"]), []))) or "-")
    console.print(table)
    return Extracted(summary.run_id, len(photos), found)


def build_indexes(settings: ApiSettings, console: Console) -> dict[str, str]:
    """Bring every index up to date with the committed runs (`witness index`); kind -> action."""
    from indexers.catalog_index import INDEX_KINDS
    from indexers.index_job import index_catalog
    from infra.search_cli import withdrawn_submission_ids
    from infra.storage.client import build_client

    outcomes = index_catalog(
        build_client(settings.s3), settings.s3.buckets.catalog, kinds=INDEX_KINDS,
        work_dir=settings.state_dir / "index-build", cache_root=settings.state_dir / "index-cache",
        withdrawn_submission_ids=withdrawn_submission_ids(settings))
    console.print("Indexes (`witness index`): " + ", ".join(
        f"{o.kind} {o.action} ({o.count})" for o in outcomes))
    return {o.kind: o.action for o in outcomes}
