"""Where a witness says they were: the browser's location or a pin they dropped, stored only with consent,
apart from EXIF and marked with its source."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from ingest_api.db import repository
from ingest_api.db.models import Position
from ingest_api.services.sniff import RejectedUpload

PositionSource = Literal["device", "pin"]


@dataclass(frozen=True)
class PositionService:
    sessions: sessionmaker[Session]

    def record(
        self,
        *,
        token: str,
        source: PositionSource,
        lat: float,
        lon: float,
        accuracy_m: float | None,
        captured_at: datetime | None,
        consent: bool,
    ) -> int:
        if not consent:
            raise RejectedUpload("consent_required", "a position is only stored when the witness agrees to it", 422)
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            raise RejectedUpload("bad_position", f"position out of range: lat={lat}, lon={lon}", 422)
        with self.sessions() as session:
            submission = repository.submission_for_token(session=session, token=token)
            if submission is None:
                raise RejectedUpload("unknown_receipt", "no submission has this receipt token", 404)
            if submission.withdrawn_at is not None:
                raise RejectedUpload("withdrawn", "this submission was withdrawn by the witness", 410)
            position = Position(
                submission_id=submission.id,
                source=source,
                lat=lat,
                lon=lon,
                accuracy_m=accuracy_m,
                captured_at=captured_at,
                consented_at=datetime.now(UTC),
            )
            session.add(position)
            session.commit()
            return position.id

    def of_submission(self, *, submission_id: str) -> list[Position]:
        with self.sessions() as session:
            return repository.positions_of_submission(session=session, submission_id=submission_id)
