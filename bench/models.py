"""Benchmark each model family on the real photos of ../shared/data: ms/image, batching, peak RSS, plate accuracy.

Per family (faces on faces/, objects and plates on vehicles/): `detect` + `embed` per photo at batch 1,
wall and CPU milliseconds (CPU time is the fairer number on a shared machine).
Peak memory per model: each family runs alone in a fresh subprocess (`--child NAME`) that decodes its
photos one at a time and runs the family on each; its peak RSS (VmHWM) minus that of a baseline subprocess
(`--child none:FOLDER`: same imports, the same photos decoded the same way, no model) is the model's own
peak (weights, ONNX Runtime/OpenCV buffers, activations). Decoding a 20-megapixel photo alone peaks at
several hundred MB, which is why the baseline must decode the same folder.
Batching: YuNet/SFace (OpenCV) and YOLOX-Nano (the ONNX file has a fixed batch dimension of 1) take one
image at a time; the plate recogniser takes a batch of crops, so its ms/crop is measured at several
batch sizes on the ground-truth plate crops. Plates: exact-match % of the best read against MANIFEST
`plate=`, and separately how often the best read's search key (`plate_key`, O/0 I/1 ... folded) equals
the plate's key, on the whole photo and with the object family's vehicle boxes, for each recogniser pad
width in REC_WIDTHS, run interleaved photo by photo so the speeds compare on the same load, with how
often the fallback recogniser ran. With `--plates-baseline REF` the plate module of that git commit
(`beam_jobs/models/plates.py` as committed there, on today's helper modules) runs interleaved with them
as a "before" variant.

    .venv/bin/python bench/models.py --out docs/bench/bench-models-2026-11-23.json
    .venv/bin/python bench/models.py --only plates --plates-baseline d410061 --out docs/bench/plates.json
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps
from rich.console import Console
from rich.table import Table

from beam_jobs.models import registry
from beam_jobs.models.base import Box, Detection, RGBImage
from beam_jobs.models.faces import FaceFamily
from beam_jobs.models.plate_geometry import box_to_quad, rectified_crop
from beam_jobs.models.plate_text import search_key
from beam_jobs.models.plates import REC_MIN_WIDTH, PlateFamily
from beam_jobs.models.transforms import rgb_to_bgr

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REC_BATCHES = (1, 2, 4, 8)
REC_WIDTHS = (REC_MIN_WIDTH, 192)
FAMILY_PHOTOS = {"faces": "faces", "objects": "vehicles", "plates": "vehicles"}
FAMILY_OPTIONS: dict[str, dict[str, Any]] = {"faces": {}, "objects": {}, "plates": {"intra_op_threads": 1}}


def load_rgb(path: Path) -> NDArray[np.uint8]:
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def photo_paths(shared: Path, folder: str) -> list[Path]:
    return sorted(p for p in (shared / folder).iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def vehicle_truth(shared: Path) -> dict[str, dict[str, str]]:
    """vehicles/ file -> ground-truth fields (plate, plate_bbox_xywh ...)."""
    with (shared / "MANIFEST.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["file"].startswith("vehicles/")]
    return {r["file"]: dict(p.split("=", 1) for p in r["ground_truth"].split("; ") if "=" in p) for r in rows}


def peak_rss_mb() -> float:
    """This process's peak resident set (MB): VmHWM, because ru_maxrss survives fork + exec on Linux and
    a child started from a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # no /proc: Linux reports KiB


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def child_run(shared: Path, name: str) -> dict[str, Any]:
    """In a fresh process: decode a family's photos one by one and run it on each ('none:FOLDER': decode only)."""
    family_name, _, folder = name.partition(":")
    family = None if family_name == "none" else registry.create(family_name, **FAMILY_OPTIONS[family_name])
    if family is not None:
        family.load()
    for path in photo_paths(shared, folder or FAMILY_PHOTOS[family_name]):
        image = load_rgb(path)
        if family is not None:
            family.embed(image, family.detect(image))
    return {"child": name, "peak_rss_mb": round(peak_rss_mb(), 1)}


def peak_memory(shared: Path) -> dict[str, float]:
    """Each family's peak RSS in its own subprocess minus a decode-only subprocess's on the same photos (MB)."""

    def run(name: str) -> float:
        out = subprocess.run([sys.executable, __file__, "--shared", str(shared), "--child", name],
                             check=True, capture_output=True, text=True).stdout
        return float(json.loads(out.strip().splitlines()[-1])["peak_rss_mb"])

    baselines = {folder: run(f"none:{folder}") for folder in sorted(set(FAMILY_PHOTOS.values()))}
    own = {name: round(run(name) - baselines[folder], 1) for name, folder in FAMILY_PHOTOS.items()}
    return {f"baseline_{folder}_mb": mb for folder, mb in baselines.items()} | own


def bench_family(name: str, images: list[NDArray[np.uint8]]) -> dict[str, Any]:
    family = registry.create(name, **FAMILY_OPTIONS[name])
    _, load_ms, _ = timed(family.load)
    family.detect(images[0])  # warm-up: first-run allocations are not per-image cost
    walls, cpus = [], []
    for image in images:
        _, wall, cpu = timed(partial(lambda i: family.embed(i, family.detect(i)), image))
        walls.append(wall)
        cpus.append(cpu)
    return {"family": name, "version": family.version, "images": len(images), "load_ms": round(load_ms, 1),
            "ms_per_image_wall": round(float(np.median(walls)), 1),
            "ms_per_image_cpu": round(float(np.median(cpus)), 1),
            "ms_per_image_cpu_mean": round(float(np.mean(cpus)), 1),
            "batching": "plates: recogniser only (see rec_batches)" if name == "plates" else "no: model takes 1 image"}


class FullResolutionFaces(FaceFamily):
    """The face family as it was before the speed-up, for a side-by-side run: every `detect` and `embed`
    converted the whole photo to BGR, and the detection copy was shrunk in one arbitrary-ratio area resize."""

    _bgr: NDArray[np.uint8]

    def detect(self, image: RGBImage) -> list[Detection]:
        self._bgr = rgb_to_bgr(image)
        return super().detect(image)

    def embed(self, image: RGBImage, detections: list[Detection]) -> NDArray[np.float32]:
        self._bgr = rgb_to_bgr(image)
        return super().embed(image, detections)

    def _raw_faces(self, image: RGBImage) -> NDArray[np.float32]:
        height, width = self._bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = self._bgr if scale == 1.0 else cv2.resize(
            self._bgr, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        self._detector.setInputSize((small.shape[1], small.shape[0]))
        _, faces = self._detector.detect(small)
        if faces is None:
            return np.zeros((0, 15), dtype=np.float32)
        faces = faces.astype(np.float32)
        faces[:, :14] /= scale
        return np.asarray(faces, dtype=np.float32)

    def _aligned(self, image: RGBImage, row: NDArray[np.float32]) -> NDArray[np.uint8]:
        return np.asarray(self._recognizer.alignCrop(self._bgr, row), dtype=np.uint8)


def faces_before_after(images: list[NDArray[np.uint8]]) -> dict[str, Any]:
    """Median CPU ms per photo (detect + embed) of the old and current face code, photo by photo in turn."""
    variants: dict[str, FaceFamily] = {"before": FullResolutionFaces(), "after": FaceFamily()}
    cpus: dict[str, list[float]] = {v: [] for v in variants}
    for family in variants.values():
        family.load()
        family.detect(images[0])
    for image in images:
        for variant, family in variants.items():
            _, _, cpu = timed(partial(lambda f, i: f.embed(i, f.detect(i)), family, image))
            cpus[variant].append(cpu)
    out: dict[str, Any] = {
        v: {"median_ms_cpu": round(float(np.median(c)), 1), "mean_ms_cpu": round(float(np.mean(c)), 1)}
        for v, c in cpus.items()
    }
    out["ratio_mean"] = round(out["after"]["mean_ms_cpu"] / out["before"]["mean_ms_cpu"], 2)
    return out


def plate_family_at(ref: str) -> Any:
    """A `PlateFamily` built from `beam_jobs/models/plates.py` as committed at git `ref` (the helper
    modules it imports are today's, which only ever gained functions)."""
    repo = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(repo), "show", f"{ref}:beam_jobs/models/plates.py"],
                            check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "plates_baseline.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("plates_baseline", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["plates_baseline"] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return module.PlateFamily(intra_op_threads=1)


def fallback_count(family: Any) -> tuple[int, int]:
    """(search regions, crops) the family's fallback recogniser has read so far; (0, 0) for code without one."""
    fallback = getattr(family, "fallback", None)
    return (fallback.regions_read, fallback.crops_read) if fallback is not None else (0, 0)


def interleaved(families: dict[str, PlateFamily], images: dict[str, NDArray[np.uint8]],
                vehicles: dict[str, list[Box]] | None
                ) -> Iterator[tuple[str, str, list[Any], float, float, tuple[int, int]]]:
    """(variant, photo, detections, wall ms, cpu ms, fallback (regions, crops)), each photo run by every
    variant in turn."""
    for name, image in images.items():
        for variant, family in families.items():
            boxes = None if vehicles is None else vehicles[name]
            before = fallback_count(family)
            found, wall, cpu = timed(partial(family.detect, image, boxes))
            after = fallback_count(family)
            yield variant, name, found, wall, cpu, (after[0] - before[0], after[1] - before[1])


def plate_accuracy(images: dict[str, NDArray[np.uint8]], truth: dict[str, dict[str, str]],
                   vehicles: dict[str, list[Box]] | None, baseline: str | None = None) -> dict[str, Any]:
    """Per recogniser width (and the `baseline` commit's code): exact best reads, best reads whose search
    key equals the plate's (not exact: O/0, I/1 ... folded), fallback use and ms/photo, side by side."""
    families: dict[str, Any] = {f"rec{w}": PlateFamily(intra_op_threads=1, rec_min_width=w) for w in REC_WIDTHS}
    if baseline:
        families[f"baseline {baseline}"] = plate_family_at(baseline)
    for family in families.values():
        family.load()
        family.detect(next(iter(images.values())))
    stats: dict[str, dict[str, Any]] = {
        v: {"exact": 0, "key_best": 0, "key_any": 0, "walls": [], "cpus": {}, "misses": {},
            "fallback_photos": 0, "fallback_regions": 0, "fallback_crops": 0} for v in families}
    for variant, name, found, wall, cpu, (regions, crops) in interleaved(families, images, vehicles):
        entry = stats[variant]
        entry["walls"].append(wall)
        entry["cpus"][name] = cpu
        entry["fallback_photos"] += regions > 0
        entry["fallback_regions"] += regions
        entry["fallback_crops"] += crops
        plate = truth[name]["plate"]
        best = str(found[0].attributes["plate_text"]) if found else ""
        entry["exact"] += best == plate
        entry["key_best"] += bool(found) and found[0].attributes["plate_key"] == search_key(plate)
        entry["key_any"] += any(d.attributes["plate_key"] == search_key(plate) for d in found)
        if best != plate:
            entry["misses"][name] = [(str(d.attributes["plate_raw"]), str(d.attributes.get("plate_recogniser", "")))
                                     for d in found]
    return {v: {"exact": e["exact"], "photos": len(images), "exact_pct": round(100 * e["exact"] / len(images), 1),
                "key_equal_best": e["key_best"], "key_equal_any": e["key_any"],
                "fallback_photos": e["fallback_photos"], "fallback_regions": e["fallback_regions"],
                "fallback_crops": e["fallback_crops"],
                "ms_per_photo_wall_median": round(float(np.median(e["walls"])), 1),
                "ms_per_photo_cpu_median": round(float(np.median(list(e["cpus"].values()))), 1),
                "ms_per_photo_cpu_mean": round(float(np.mean(list(e["cpus"].values()))), 1), "misses": e["misses"],
                "cpu_ms_by_photo": {n: round(ms, 1) for n, ms in e["cpus"].items()}}
            for v, e in stats.items()}


def rec_batches(images: dict[str, NDArray[np.uint8]], truth: dict[str, dict[str, str]]) -> dict[str, float]:
    """Recogniser CPU ms/crop at each batch size, on the ground-truth plate crops."""
    family = PlateFamily(intra_op_threads=1)
    family.load()
    crops = []
    for name, image in images.items():
        x, y, w, h = (float(v) for v in truth[name]["plate_bbox_xywh"].split())
        crops.append(rectified_crop(rgb_to_bgr(image), box_to_quad(Box(x, y, w, h))))
    family._ocr.text_rec(crops[:1])
    out = {}
    for size in REC_BATCHES:
        batches = [crops[i : i + size] for i in range(0, len(crops), size)]
        _, _, cpu = timed(partial(lambda bs: [family._ocr.text_rec(b) for b in bs], batches))
        out[str(size)] = round(cpu / len(crops), 2)
    return out


def report(result: dict[str, Any]) -> None:
    console = Console()
    table = Table(title="model families (batch 1, detect + embed, median per photo)")
    for col in ("family", "photos", "load ms", "ms wall", "ms CPU", "peak MB (own process - baseline)", "batching"):
        table.add_column(col)
    for f in result["families"]:
        table.add_row(f["family"], str(f["images"]), str(f["load_ms"]), str(f["ms_per_image_wall"]),
                      str(f["ms_per_image_cpu"]), str(result.get("peak_memory_mb", {}).get(f["family"], "")),
                      f["batching"])
    console.print(table)
    for mode, variants in result.get("plates", {}).items():
        for variant, p in variants.items():
            console.print(f"plates {mode} {variant}: {p['exact']}/{p['photos']} exact ({p['exact_pct']} %), "
                          f"search key equal (not exact) best {p['key_equal_best']} / any {p['key_equal_any']}, "
                          f"median {p['ms_per_photo_cpu_median']} ms CPU (mean {p['ms_per_photo_cpu_mean']}); "
                          f"fallback on {p['fallback_photos']} photos ({p['fallback_regions']} regions, "
                          f"{p['fallback_crops']} crops); misses {p['misses']}")
    for key, label in (("plate_rec_ms_per_crop_by_batch", "plate recogniser CPU ms/crop by batch size"),
                       ("faces_before_after", "faces before/after (CPU ms/photo, same run)"),
                       ("peak_memory_mb", "peak memory (MB, own process minus decode-only process)")):
        if key in result:
            console.print(f"{label}: {result[key]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--only", choices=sorted(FAMILY_PHOTOS), help="benchmark one family (no peak-memory runs)")
    parser.add_argument("--plates-baseline", metavar="GIT_REF",
                        help="also run the plate code committed at this git ref, interleaved, as 'before'")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # NAME or none:FOLDER, see child_run
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_run(args.shared, args.child)))
        return
    wanted = [args.only] if args.only else list(FAMILY_PHOTOS)
    truth = vehicle_truth(args.shared)
    vehicles = {name: load_rgb(args.shared / name) for name in sorted(truth)}
    faces = [load_rgb(p) for p in photo_paths(args.shared, "faces")] if "faces" in wanted else []
    photos = {"faces": faces, "objects": list(vehicles.values()), "plates": list(vehicles.values())}
    result: dict[str, Any] = {"machine": platform.platform(),
                              "families": [bench_family(name, photos[name]) for name in wanted]}
    if "faces" in wanted:
        result["faces_before_after"] = faces_before_after(faces)
    if "plates" in wanted:
        objects = registry.create("objects")
        objects.load()
        boxes = {n: [d.box for d in objects.detect(i) if d.kind == "vehicle"] for n, i in vehicles.items()}
        result["plates"] = {"vehicle_boxes": plate_accuracy(vehicles, truth, boxes, args.plates_baseline),
                            "whole_image": plate_accuracy(vehicles, truth, None, args.plates_baseline)}
        result["plate_rec_ms_per_crop_by_batch"] = rec_batches(vehicles, truth)
    if not args.only:
        result["peak_memory_mb"] = peak_memory(args.shared)
    report(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
