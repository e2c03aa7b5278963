"""The investigator's part of the demo: four fenced searches through `/v1/search/*`, printed as short tables.

Every search carries the case, a legal basis and a fence (a 1.5 km circle around the incident, the evening's
four hours, photos without a trusted place or time left out), and the API logs it twice: the request before it
runs and the ids of the results it showed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from infra.demo.samples import SUSPECT_PLATE, SamplePhoto, car_query, face_query
from infra.demo.staff_client import Incident, search

LEGAL_BASIS = "Demo: flagrant-offence inquiry, Code de procedure penale art. 53 (sample data)"
# A witness remembers the plate with one character wrong (417 or 418?).
MISREMEMBERED_PLATE = SUSPECT_PLATE.replace("417", "418")


@dataclass(frozen=True)
class Found:
    photo: str  # sample file name (or the photo id where the photo is not a demo sample)
    photo_id: str
    score: float
    taken_utc: str  # HH:MM, "?" when the photo has no trusted time
    detail: str


@dataclass(frozen=True)
class SearchResult:
    title: str
    kind: str
    candidates: int
    hits: list[Found]

    @property
    def photos(self) -> set[str]:
        return {hit.photo for hit in self.hits}


def _detail(hit: dict[str, Any]) -> str:
    attributes = hit["attributes"]
    if hit["kind"] == "plate":
        return str(attributes.get("plate_text") or "")
    if hit["kind"] == "vehicle":
        return f"{attributes.get('colour', '')} {attributes.get('class', '')}".strip()
    return f"face {attributes.get('face_px', '?')} px"


def _time(value: str | None) -> str:
    return f"{datetime.fromisoformat(value):%H:%M}" if value else "?"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def fence(incident: Incident) -> dict[str, Any]:
    return {"circle": {"lat": incident.lat, "lon": incident.lon, "radius_m": incident.radius_m},
            "start": incident.starts_at.isoformat(), "end": incident.ends_at.isoformat(),
            "include_unplaced": False, "include_untimed": False}


def run_searches(client: httpx.Client, *, case_id: str, incident: Incident, photos: list[SamplePhoto],
                 names: dict[str, str]) -> list[SearchResult]:
    """Face (crop of the first photo's bystander), "black car", car by image, plate with one character wrong."""
    common = {"case_id": case_id, "legal_basis": LEGAL_BASIS, "fence": fence(incident)}
    first = photos[0]
    asks: list[tuple[str, str, dict[str, Any]]] = [
        (f"Face search: the bystander cropped from {first.name}", "faces",
         {"image_base64": _b64(face_query(first, seed=0)), "k": 10}),
        ('Vehicle search by description: "black car"', "vehicles/attributes",
         {"description": "black car", "limit": 10}),
        (f"Vehicle search by image: the car cropped from {first.name}", "vehicles",
         {"image_base64": _b64(car_query(first, first.cars[0], seed=0)), "k": 5}),
        (f"Plate search: {MISREMEMBERED_PLATE} (one character wrong)", "plates",
         {"plate": MISREMEMBERED_PLATE, "limit": 10}),
    ]
    results = []
    for title, route, body in asks:
        answer = search(client, route, {**common, **body})
        hits = [Found(names.get(h["photo_id"], h["photo_id"][:8]), h["photo_id"], float(h["score"]),
                      _time(h["taken_at_utc"]), _detail(h)) for h in answer["hits"]]
        results.append(SearchResult(title, answer["kind"], int(answer["candidates"]), hits))
    return results


def print_results(results: list[SearchResult], console: Console) -> None:
    for result in results:
        console.print(f"[bold]{result.title}[/]: {len(result.hits)} results of {result.candidates} fenced "
                      f"{result.kind}s")
        table = Table("rank", "score", "photo", "taken (UTC)", "found")
        for rank, hit in enumerate(result.hits, 1):
            table.add_row(str(rank), f"{hit.score:.2f}", hit.photo, hit.taken_utc, hit.detail)
        console.print(table)
