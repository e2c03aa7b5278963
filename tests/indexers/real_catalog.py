"""Catalog records made from the real photos in ../shared/data, the way the extraction job makes them.

Faces go through the real face family and `beam_jobs.pipeline.detect.detect_photo` (the job's own record
builder); plates are built from MANIFEST.csv plate text (the OCR model is tested in tests/beam_jobs).
Positions and times are assigned here, around one incident, so fences have something to cut.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from beam_jobs.extraction.decode import decode_image
from beam_jobs.models import registry
from beam_jobs.pipeline.detect import detect_photo
from beam_jobs.records import DETECTION_SCHEMA, PHOTO_SCHEMA, Detection, detections_table

INCIDENT = (51.5007, -0.1246)  # Westminster Bridge
T0 = datetime(2025, 3, 22, 14, 0, tzinfo=UTC)
IDENTITIES = {
    "obama": {"obama_2012_portrait.jpg", "obama_2009_congress.jpg", "obama_2010_blue_room_crop.jpg",
              "obama_biden_2010_group.jpg"},
    "person_a": {"compreface_person_A_002.jpg", "compreface_person_A_004.jpg", "compreface_person_A_005.jpg",
                 "compreface_person_A_006.jpg"},
}


def photo_id(name: str) -> str:
    return f"photo-{Path(name).stem}"


def photo_rows(names: list[str], *, run_id: str, unplaced: frozenset[str] = frozenset(),
               untimed: frozenset[str] = frozenset()) -> pa.Table:
    """One photo row per name, spread over ~300 m and one hour around the incident."""
    rows = []
    for i, name in enumerate(names):
        placed, timed = name not in unplaced, name not in untimed
        rows.append({
            "photo_id": photo_id(name), "sha256": hashlib.sha256(name.encode()).hexdigest(), "event_id": "ev-bridge",
            "submission_id": f"sub-{Path(name).stem}", "object_key": f"originals/{name}", "format": "JPEG",
            "width": 100, "height": 100,
            "lat": INCIDENT[0] + 0.0002 * (i % 10) if placed else None,
            "lon": INCIDENT[1] + 0.0002 * (i // 10) if placed else None, "alt": None,
            "position_source": "exif" if placed else "none", "place_name": "Westminster" if placed else None,
            "taken_at_utc": T0 + timedelta(minutes=2 * i) if timed else None, "taken_local": None,
            "time_source": "exif_offset" if timed else "unknown", "clock_skew_s": None, "time_flags": [],
            "make": None, "model": None, "lens": None, "software": None, "phash": "0" * 16, "exif_problems": [],
            "thumbnail_key": f"thumbnails/{photo_id(name)}.jpg", "extracted_by": "test", "run_id": run_id,
        })
    return pa.Table.from_pylist(rows, schema=PHOTO_SCHEMA)


@dataclass(frozen=True)
class FaceCatalog:
    photos: pa.Table
    detections: pa.Table
    crops: dict[str, bytes]  # crop_key -> EXIF-free JPEG, as the job writes to `derived`


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(decode_image(path.read_bytes(), max_pixels=100_000_000).image)


@functools.cache
def face_catalog(data_dir: Path, run_id: str = "run-faces") -> FaceCatalog:
    family = registry.create("faces")
    family.load()
    names = sorted(p.name for p in (data_dir / "faces").iterdir())
    records: list[Detection] = []
    crops = {}
    for name in names:
        found = detect_photo([family], load_rgb(data_dir / "faces" / name), photo_id=photo_id(name),
                             crop_max_side=128)
        if found.failures:  # the job would skip them; a fixture must not
            raise RuntimeError(f"the face family failed on {name}: {found.failures}")
        for record, crop in found.found:
            records.append(record)
            crops[str(record.crop_key)] = crop
    return FaceCatalog(photo_rows(names, run_id=run_id), detections_table(records), crops)


def face_crop_jpeg(data_dir: Path, name: str, margin: float = 0.6) -> bytes:
    """The largest face of a photo cut out with `margin` of its size around it, as a plain JPEG."""
    family = registry.create("faces")
    family.load()
    image = load_rgb(data_dir / "faces" / name)
    face = max(family.detect(image), key=lambda d: d.box.w * d.box.h).box
    x0, y0 = max(0, int(face.x - margin * face.w)), max(0, int(face.y - margin * face.h))
    x1 = min(image.shape[1], int(face.x + (1 + margin) * face.w))
    y1 = min(image.shape[0], int(face.y + (1 + margin) * face.h))
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1])).save(out, format="JPEG", quality=92)
    return out.getvalue()


def plate_catalog(manifest: dict[str, dict[str, str]], run_id: str = "run-plates") -> tuple[pa.Table, pa.Table]:
    """(detections, photos): one plate detection per vehicles/ photo with the MANIFEST plate text."""
    names = sorted(f for f in manifest if f.startswith("vehicles/"))
    photos = photo_rows([Path(n).name for n in names], run_id=run_id)
    records = []
    for name in names:
        fields = dict(part.strip().split("=", 1) for part in manifest[name]["ground_truth"].split(";") if "=" in part)
        pid = photo_id(Path(name).name)
        records.append(Detection(
            detection_id=f"{pid}-plate", photo_id=pid, kind="plate", box=(1.0, 2.0, 60.0, 20.0), score=0.9,
            quality=0.9, attributes={"class": "plate", "plate_text": fields["plate"], "plate_raw": fields["plate"]},
            embedding=None, model_name="plates", model_version="manifest", crop_key=f"crops/{pid}-plate.jpg"))
    return detections_table(records), photos


def synthetic_detections(names: list[str], seed: int, kind: str = "face", dim: int = 8) -> pa.Table:
    """One detection `det-<name>` per photo `photo-<name>`, with seeded random unit vectors."""
    x = np.random.default_rng(seed).standard_normal((len(names), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    rows = [{"detection_id": f"det-{n}", "photo_id": f"photo-{n}", "kind": kind, "box": [1.0, 2.0, 3.0, 4.0],
             "score": 0.9, "quality": 0.8, "attributes": "{}", "embedding": x[i].astype(np.float32).tolist(),
             "model_name": "m", "model_version": "v", "crop_key": f"crops/det-{n}.jpg"} for i, n in enumerate(names)]
    return pa.Table.from_pylist(rows, schema=DETECTION_SCHEMA)


def names_of(hits_photo_ids: list[str]) -> list[str]:
    return [pid.removeprefix("photo-") for pid in hits_photo_ids]


def identity_stems(identity: str) -> set[str]:
    return {Path(n).stem for n in IDENTITIES[identity]}


def attributes(**values: object) -> str:
    return json.dumps(values, sort_keys=True)
