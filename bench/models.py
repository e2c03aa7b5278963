"""Benchmark each model family on the real photos of ../shared/data: ms/image, batching, peak RSS, plate accuracy.

Per family (faces on faces/, objects and plates on vehicles/): `detect` + `embed` per photo at batch 1,
wall and CPU milliseconds (CPU time is the fairer number on a shared machine), and the process's peak
RSS after the family ran (`resource.getrusage`, cumulative: families load one after another).
Batching: YuNet/SFace (OpenCV) and YOLOX-Nano (the ONNX file has a fixed batch dimension of 1) take one
image at a time; the plate recogniser takes a batch of crops, so its ms/crop is measured at several
batch sizes on the ground-truth plate crops. Plates: exact-match % of the best read against MANIFEST
`plate=`, on the whole photo and with the object family's vehicle boxes.

    .venv/bin/python bench/models.py --out bench-models.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps
from rich.console import Console
from rich.table import Table

from beam_jobs.models import registry
from beam_jobs.models.base import Box
from beam_jobs.models.plate_geometry import box_to_quad, rectified_crop
from beam_jobs.models.plates import PlateFamily
from beam_jobs.models.transforms import rgb_to_bgr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REC_BATCHES = (1, 4, 8, 16)


def load_rgb(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def vehicle_truth(shared: Path) -> dict[str, dict[str, str]]:
    """vehicles/ file -> ground-truth fields (plate, plate_bbox_xywh ...)."""
    with (shared / "MANIFEST.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["file"].startswith("vehicles/")]
    return {r["file"]: dict(p.split("=", 1) for p in r["ground_truth"].split("; ") if "=" in p) for r in rows}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def bench_family(name: str, images: list[NDArray[np.uint8]], options: dict[str, Any]) -> dict[str, Any]:
    family = registry.create(name, **options)
    _, load_ms, _ = timed(family.load)
    family.detect(images[0])  # warm-up: first-run allocations are not per-image cost
    walls, cpus = [], []
    for image in images:
        _, wall, cpu = timed(lambda image=image: family.embed(image, family.detect(image)))
        walls.append(wall)
        cpus.append(cpu)
    return {"family": name, "images": len(images), "load_ms": round(load_ms, 1),
            "ms_per_image_wall": round(float(np.mean(walls)), 1), "ms_per_image_cpu": round(float(np.mean(cpus)), 1),
            "batching": "plates: recogniser only (see rec_batches)" if name == "plates" else "no (one image per call)",
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def plate_accuracy(images: dict[str, NDArray[np.uint8]], truth: dict[str, dict[str, str]],
                   vehicles: dict[str, list[Box]] | None) -> dict[str, Any]:
    family = PlateFamily(intra_op_threads=1)
    family.load()
    exact, walls, cpus, misses = 0, [], [], {}
    for name, image in images.items():
        found, wall, cpu = timed(lambda n=name, i=image: family.detect(i, None if vehicles is None else vehicles[n]))
        walls.append(wall)
        cpus.append(cpu)
        best = str(found[0].attributes["plate_text"]) if found else ""
        exact += best == truth[name]["plate"]
        if best != truth[name]["plate"]:
            misses[name] = [str(d.attributes["plate_raw"]) for d in found]
    return {"exact": exact, "photos": len(images), "exact_pct": round(100 * exact / len(images), 1),
            "ms_per_photo_wall": round(float(np.mean(walls)), 1), "ms_per_photo_cpu": round(float(np.mean(cpus)), 1),
            "misses": misses}


def rec_batches(images: dict[str, NDArray[np.uint8]], truth: dict[str, dict[str, str]]) -> dict[str, float]:
    """Recogniser ms/crop at each batch size, on the ground-truth plate crops."""
    family = PlateFamily(intra_op_threads=1)
    family.load()
    crops = []
    for name, image in images.items():
        x, y, w, h = (float(v) for v in truth[name]["plate_bbox_xywh"].split())
        crops.append(rectified_crop(rgb_to_bgr(image), box_to_quad(Box(x, y, w, h))))
    out = {}
    for size in REC_BATCHES:
        batches = [crops[i : i + size] for i in range(0, len(crops), size)]
        _, wall, _ = timed(lambda batches=batches: [family._ocr.text_rec(b) for b in batches])
        out[str(size)] = round(wall / len(crops), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    truth = vehicle_truth(args.shared)
    vehicles = {name: load_rgb(args.shared / name) for name in sorted(truth)}
    faces = [load_rgb(p) for p in sorted((args.shared / "faces").iterdir()) if p.suffix.lower() in {".jpg", ".jpeg",
                                                                                                  ".png"}]
    families = [bench_family("faces", faces, {}), bench_family("objects", list(vehicles.values()), {}),
                bench_family("plates", list(vehicles.values()), {"intra_op_threads": 1})]
    objects = registry.create("objects")
    objects.load()
    boxes = {n: [d.box for d in objects.detect(i) if d.kind == "vehicle"] for n, i in vehicles.items()}
    plates = {"whole_image": plate_accuracy(vehicles, truth, None),
              "vehicle_boxes": plate_accuracy(vehicles, truth, boxes)}
    result = {"machine": platform.platform(), "families": families, "plates": plates,
              "plate_rec_ms_per_crop_by_batch": rec_batches(vehicles, truth), "peak_rss_mb": round(peak_rss_mb(), 1)}
    table = Table(title="model families (batch 1, detect + embed)")
    for col in ("family", "images", "load ms", "ms/img wall", "ms/img cpu", "batching", "peak RSS MB"):
        table.add_column(col)
    for f in families:
        table.add_row(f["family"], str(f["images"]), str(f["load_ms"]), str(f["ms_per_image_wall"]),
                      str(f["ms_per_image_cpu"]), f["batching"], str(f["peak_rss_mb"]))
    console = Console()
    console.print(table)
    for mode, p in plates.items():
        console.print(f"plates {mode}: {p['exact']}/{p['photos']} exact ({p['exact_pct']} %), "
                      f"{p['ms_per_photo_wall']} ms/photo wall, {p['ms_per_photo_cpu']} ms cpu; misses {p['misses']}")
    console.print(f"plate recogniser ms/crop by batch size: {result['plate_rec_ms_per_crop_by_batch']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
