"""Witnesses sending the demo photos: one submission per witness, through `POST /v1/events/{id}/photos`.

A photo the event already holds (a re-run of the demo on the same state folder) is not sent again: the demo
stays one incident with six photos however often it runs, and its receipt row says so.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from infra.demo.samples import SamplePhoto, encode_jpeg
from ingest_api.db.models import Submission, Upload
from ingest_api.db.session import build_engine, session_factory
from ingest_api.settings import ApiSettings


class DemoUploadFailed(Exception):
    """An upload was refused; the demo stops and says why."""


@dataclass(frozen=True)
class Receipt:
    file: str
    sha256: str
    submission_id: str
    size: int
    received_at: str
    status: str  # "stored" now, or "already stored" by an earlier run


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


def stored_in_event(settings: ApiSettings, event_id: str) -> dict[str, tuple[str, int, str]]:
    """sha256 -> (submission id, size, received at) of the photos the event already holds."""
    engine = build_engine(settings.effective_database_url)
    try:
        with session_factory(engine)() as session:
            rows = session.execute(
                select(Upload.sha256, Upload.submission_id, Upload.size, Upload.received_at)
                .join(Submission, Submission.id == Upload.submission_id)
                .where(Submission.event_id == event_id, Upload.withdrawn_at.is_(None))
            )
            return {sha: (submission, size, f"{at:%Y-%m-%dT%H:%M:%S}") for sha, submission, size, at in rows}
    finally:
        engine.dispose()


def send_photos(settings: ApiSettings, base_url: str, event_id: str, photos: list[SamplePhoto], console: Console
                ) -> list[Receipt]:
    """Upload what the event lacks, each witness on its own submission token; a receipt row per photo."""
    stored = stored_in_event(settings, event_id)
    receipts: list[Receipt] = []
    tokens: dict[int, str] = {}
    url = f"{base_url}/v1/events/{event_id}/photos"
    with httpx.Client(timeout=60) as client, Progress(console=console, transient=True) as progress:
        task = progress.add_task("witnesses uploading photos", total=len(photos))
        for index, photo in enumerate(photos):
            data = encode_jpeg(photo, seed=index)
            sha = hashlib.sha256(data).hexdigest()
            if sha in stored:
                submission, size, received = stored[sha]
                receipts.append(Receipt(photo.name, sha, submission, size, received, "already stored"))
            else:
                answer = _upload(client, url, data, tokens.get(photo.witness))
                if isinstance(answer.get("submission_token"), str):
                    tokens[photo.witness] = str(answer["submission_token"])
                receipts.append(Receipt(photo.name, str(answer["sha256"]), str(answer["submission_id"]),
                                        int(str(answer["size"])), str(answer["received_at"]), "stored"))
            progress.advance(task)
    return receipts


def receipts_table(event_id: str, receipts: list[Receipt]) -> Table:
    table = Table(title=f"Receipts for event {event_id}: stored, read back and SHA-256 verified")
    for column in ("file", "witness submission", "sha256", "bytes", "received (UTC)", "status"):
        table.add_column(column, overflow="fold")
    for receipt in receipts:
        table.add_row(receipt.file, receipt.submission_id[:8], receipt.sha256, str(receipt.size),
                      receipt.received_at, receipt.status)
    return table
