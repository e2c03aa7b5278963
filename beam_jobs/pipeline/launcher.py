"""Thin launcher of the extraction job: settings once, pending manifests, run, verify, commit.

    python -m beam_jobs.extract [--models faces,objects,plates|none] [--retry-failed] [--runner=DirectRunner]
                                [beam flags...]

`--retry-failed` also extracts again the photos on which a model family raised (`model_failed` dead letters still
pending, see `beam_jobs.pipeline.retry`), e.g. once the family is fixed; without it a processed manifest is never
extracted again.

Our flags are parsed with `parse_known_args`; everything else goes to Beam's `PipelineOptions`. The runner
is always named (Beam's implicit default first tries to download the Prism binary). infra/RUNNERS.md lists
the options of every runner.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineState
from minio import Minio
from rich.console import Console
from rich.table import Table

from beam_jobs.pipeline.catalog import (
    CatalogState,
    commit_run,
    load_state,
    new_run_id,
    pending_manifests,
    verify_run,
)
from beam_jobs.pipeline.detect import resolve_families
from beam_jobs.pipeline.extract_pipeline import JobConfig, build_pipeline
from beam_jobs.pipeline.lease import ExtractionLease, LeaseHeld, LeaseHolder
from beam_jobs.pipeline.manifests import list_manifest_keys
from beam_jobs.pipeline.retry import manifests_to_retry, pending_failures, read_run_outcomes
from beam_jobs.pipeline.settings import ExtractSettings
from beam_jobs.pipeline.sinks import PartInfo
from infra.storage.client import build_client, ensure_buckets

log = logging.getLogger(__name__)

RUNNER_ALIASES = {"DaskRunner": "apache_beam.runners.dask.dask_runner.DaskRunner"}


class ExtractionFailed(RuntimeError):
    """The pipeline did not finish DONE; nothing was committed."""


@dataclass
class RunSummary:
    run_id: str | None
    runner: str
    manifests: int
    parts: list[PartInfo] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    retried: int | None = None  # of `manifests`, those extracted again for a model failure; None: not asked

    def rows(self, table: str) -> int:
        return sum(part.rows for part in self.parts if part.table == table)


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="python -m beam_jobs.extract", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", default="DirectRunner", help="Beam runner (DaskRunner is an accepted alias)")
    parser.add_argument("--models", default=None,
                        help="comma-separated model families, or 'none'; default: every installed family")
    parser.add_argument("--retry-failed", action="store_true",
                        help="also extract again the photos on which one of these families raised (model_failed)")
    return parser.parse_known_args(list(argv) if argv is not None else None)


def parse_models(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    return [] if names == ["none"] else names


def pipeline_options(runner: str, beam_args: Sequence[str]) -> PipelineOptions:
    return PipelineOptions([f"--runner={RUNNER_ALIASES.get(runner, runner)}", *beam_args])


def collect_metrics(result: beam.runners.runner.PipelineResult) -> dict[str, float]:
    """Counters and distribution means by name; empty where the runner keeps none (DaskRunner)."""
    try:
        query = result.metrics().query()
    except NotImplementedError:
        return {}
    values: dict[str, float] = {}
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        values[counter.key.metric.name] = values.get(counter.key.metric.name, 0) + float(value or 0)
    for dist in query["distributions"]:
        data = dist.committed if dist.committed is not None else dist.attempted
        if data is not None and data.count:
            values[f"{dist.key.metric.name}.mean"] = data.sum / data.count
            values[f"{dist.key.metric.name}.count"] = float(data.count)
    return values


def run_extract(
    settings: ExtractSettings,
    *,
    runner: str = "DirectRunner",
    beam_args: Sequence[str] = (),
    models: Sequence[str] | None = None,
    console: Console | None = None,
    retry_failed: bool = False,
) -> RunSummary:
    """Extract every manifest not yet processed by a committed run (`retry_failed`: and those on which one of
    this run's model families last raised); commit the run if it verifies. One launch at a time per catalog:
    raises `lease.LeaseHeld` while another launch holds the lease."""
    started = time.perf_counter()
    client = build_client(settings.s3)
    ensure_buckets(client, settings.s3)
    buckets = settings.s3.buckets
    run_id = new_run_id()
    families = resolve_families(models if models is not None else settings.extract_models, settings.models_dir)
    # Pending manifests are listed under the lease: listed before it, a launch could redo what the holder commits.
    with ExtractionLease(client, buckets.catalog, LeaseHolder.this_process(run_id),
                         ttl_s=settings.extract_lease_ttl_s) as lease:
        present = set(list_manifest_keys(client, buckets.evidence))
        state = load_state(client, buckets.catalog)
        manifests = pending_manifests(present, state)
        retried = _failed_manifests(client, buckets.catalog, state, families, present) if retry_failed else None
        manifests = sorted({*manifests, *(retried or ())})
        if not manifests:
            return RunSummary(None, runner, 0, seconds=time.perf_counter() - started,
                              retried=None if retried is None else 0)
        summary = _extract_and_commit(settings, client, run_id, manifests, runner=runner, beam_args=beam_args,
                                      families=families, console=console)
        summary.retried = None if retried is None else len(retried)
        if lease.lost:
            log.warning("run %s committed after its lease lapsed: another launch may have extracted the same "
                        "manifests (readers keep one row per photo)", run_id)
    summary.seconds = time.perf_counter() - started
    return summary


def _failed_manifests(client: Minio, catalog_bucket: str, state: CatalogState, families: Sequence[str],
                      present: set[str]) -> list[str]:
    """Manifests to extract again because one of `families` last raised on them; says which failures wait for
    families this run does not run."""
    pending = pending_failures(read_run_outcomes(client, catalog_bucket, state))
    waiting = sorted({name for names in pending.values() for name in names} - set(families))
    if waiting:
        log.warning("model failures of %s are not retried: not among this run's families (%s)",
                    ", ".join(waiting), ", ".join(families) or "none")
    return manifests_to_retry(pending, families=families, present=present)


def _extract_and_commit(
    settings: ExtractSettings,
    client: Minio,
    run_id: str,
    manifests: list[str],
    *,
    runner: str,
    beam_args: Sequence[str],
    families: tuple[str, ...],
    console: Console | None,
) -> RunSummary:
    buckets = settings.s3.buckets
    config = JobConfig(
        s3=settings.s3, run_id=run_id, extracted_by=settings.extracted_by, max_pixels=settings.max_pixels,
        thumbnail_max_side=settings.thumbnail_max_side, crop_max_side=settings.crop_max_side,
        num_shards=settings.num_shards, families=families,
        models_dir=settings.models_dir, model_threads=settings.model_threads,
    )
    pipeline = beam.Pipeline(options=pipeline_options(runner, beam_args))
    build_pipeline(pipeline, manifests, config)
    message = f"extracting {len(manifests)} photos on {runner} (models: {', '.join(config.families) or 'none'})"
    if console is not None:
        with console.status(message):
            result = pipeline.run()
            state = result.wait_until_finish()
    else:
        result = pipeline.run()
        state = result.wait_until_finish()
    dask_client = getattr(result, "client", None)
    if dask_client is not None:  # the DaskRunner opens a distributed.Client and never closes it
        dask_client.close()
    if state != PipelineState.DONE:
        raise ExtractionFailed(f"run {config.run_id} ended {state}; nothing committed, the next run redoes it")
    parts = verify_run(client, buckets.catalog, config.run_id, expected_inputs=len(manifests))
    # The families go on record: a retry takes a failure as fixed only after a run that ran its family.
    commit_run(client, buckets.catalog, config.run_id, parts=parts, manifests=manifests,
               extracted_by=settings.extracted_by, extra={"families": list(config.families)})
    return RunSummary(config.run_id, runner, len(manifests), parts, collect_metrics(result))


def summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"extraction run {summary.run_id or '(nothing new)'} on {summary.runner}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("manifests processed", str(summary.manifests))
    if summary.retried is not None:
        table.add_row("of which retried (model_failed)", str(summary.retried))
    for name in ("photos", "dead_letters", "detections"):
        table.add_row(f"{name} rows", str(summary.rows(name)))
    for name, value in sorted(summary.metrics.items()):
        table.add_row(name, f"{value:.1f}" if name.endswith(".mean") else f"{value:.0f}")
    table.add_row("seconds", f"{summary.seconds:.1f}")
    return table


def run(argv: Sequence[str] | None = None) -> RunSummary:
    """Entry point: read `ExtractSettings` from the environment once, run, print a summary."""
    args, beam_args = parse_args(argv)
    console = Console()
    try:
        summary = run_extract(ExtractSettings(), runner=args.runner, beam_args=beam_args,
                              models=parse_models(args.models), console=console,
                              retry_failed=args.retry_failed)
    except LeaseHeld as error:
        console.print(f"not started: {error}")
        raise SystemExit(3) from error
    console.print(summary_table(summary))
    return summary
