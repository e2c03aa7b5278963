"""Benchmark the extraction job: photos/s per stage in a plain loop vs the whole job on DirectRunner.

Starts its own SeaweedFS server in a temp folder (127.0.0.1), uploads the real photos of ../shared/data
(exif/ and vehicles/, repeated to --count) as originals + manifests, then measures
  loop:  read original, extract facts, write thumbnail (and each model family with --models) per photo;
  beam:  the same through `run_extract` on DirectRunner (in-process and multi_processing x2).

    .venv/bin/python bench/extract.py --count 40 --out bench-extract.json
    .venv/bin/python bench/extract.py --count 20 --models faces,objects,plates
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from beam_jobs.extraction.decode import decode_image
from beam_jobs.extraction.photo import RejectedPhoto, extract_photo_facts
from beam_jobs.pipeline.detect import load_families
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.manifests import list_manifest_keys, parse_manifest
from beam_jobs.pipeline.settings import ExtractSettings
from infra import s3server
from infra.storage.client import build_client, ensure_buckets
from infra.storage.config import BucketNames, S3Settings
from infra.storage.objects import read_bytes, store_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "beam_jobs" / "pipeline"))
from conftest import put_evidence  # noqa: E402  (the tests' upload helper: same manifests as the API)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def photo_files(count: int) -> list[Path]:
    files = sorted([*(SHARED / "exif").glob("*.jp*g"), *(SHARED / "vehicles").glob("*.jpg")])
    return [files[i % len(files)] for i in range(count)]


def loop(settings: ExtractSettings, families: list[str]) -> dict[str, float]:
    client, buckets = build_client(settings.s3), settings.s3.buckets
    models = load_families(families, settings.models_dir)
    totals = {"read": 0.0, "extract": 0.0, "thumbnail": 0.0, **{f"model.{f.name}": 0.0 for f in models}}
    started = time.perf_counter()
    for key in sorted(list_manifest_keys(client, buckets.evidence)):
        t0 = time.perf_counter()
        pending = parse_manifest(key, read_bytes(client, buckets.evidence, key))
        data = read_bytes(client, buckets.evidence, pending.object_key, pending.object_version)
        t1 = time.perf_counter()
        try:
            facts, thumb = extract_photo_facts(
                data, object_key=pending.object_key, event_id=pending.event_id, submission_id=pending.submission_id,
                uploaded_at_utc=pending.received_at, device_position=None, max_pixels=settings.max_pixels)
        except RejectedPhoto:
            continue
        t2 = time.perf_counter()
        store_bytes(client, buckets.derived, f"bench/{facts.photo_id}.jpg", thumb, "image/jpeg")
        t3 = time.perf_counter()
        totals["read"] += t1 - t0
        totals["extract"] += t2 - t1
        totals["thumbnail"] += t3 - t2
        if models:
            image = np.asarray(decode_image(data, max_pixels=settings.max_pixels).image.convert("RGB"))
            for family in models:
                t4 = time.perf_counter()
                found = family.detect(image)
                if found and family.embedding_dim:
                    family.embed(image, found)
                totals[f"model.{family.name}"] += time.perf_counter() - t4
    totals["total"] = time.perf_counter() - started
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--models", default="", help="comma-separated families for the model stage (default none)")
    parser.add_argument("--out", type=Path, default=Path("bench-extract.json"))
    args = parser.parse_args(argv)
    families = [f for f in args.models.split(",") if f]
    console = Console()
    results: dict[str, Any] = {"machine": platform.platform(), "count": args.count, "models": families}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        port = s3server.find_free_port_base()
        base = S3Settings(endpoint=f"127.0.0.1:{port}", evidence_retention_days=1)
        s3server.start(Path(tmp), base, s3_port=port)
        try:
            runs: dict[str, tuple[str, list[str]]] = {
                "beam_direct": ("DirectRunner", []),
                "beam_multi_processing_x2": ("DirectRunner", ["--direct_running_mode=multi_processing",
                                                              "--direct_num_workers=2"]),
            }
            files = photo_files(args.count)
            for name in ["loop", *runs]:
                bucket = name.replace("_", "-")
                s3 = base.model_copy(update={"buckets": BucketNames(
                    evidence=f"ev-{bucket}", derived="derived", catalog=f"cat-{bucket}")})
                settings = ExtractSettings.from_mapping({"s3": s3, "extract_models": families})
                client = build_client(s3)
                ensure_buckets(client, s3)
                for index, path in enumerate(files):  # distinct submissions: every copy is its own photo
                    put_evidence(client, s3.buckets.evidence, name=f"{index}-{path.name}", data=path.read_bytes())
                if name == "loop":
                    results[name] = loop(settings, families)
                else:
                    runner, flags = runs[name]
                    summary = run_extract(settings, runner=runner, beam_args=flags)
                    results[name] = {"total": summary.seconds, "photos": summary.rows("photos"),
                                     "dead_letters": summary.rows("dead_letters"), "metrics": summary.metrics}
        finally:
            s3server.stop(Path(tmp))
    table = Table(title=f"extraction, {args.count} photos ({hashlib.sha256(str(files).encode()).hexdigest()[:8]})")
    for column in ("measure", "seconds", "photos/s"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for stage, seconds in results["loop"].items():
        table.add_row(f"loop: {stage}", f"{seconds:.2f}", f"{args.count / seconds:.1f}" if seconds else "-")
    for name in runs:
        seconds = results[name]["total"]
        table.add_row(f"{name}: whole job", f"{seconds:.2f}", f"{args.count / seconds:.1f}")
    console.print(table)
    args.out.write_text(json.dumps(results, indent=2, default=str))
    console.print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
