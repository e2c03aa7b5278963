"""The same job on DirectRunner multi_processing and PortableRunner LOOPBACK (embedded job service)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from beam_jobs.pipeline.catalog import read_committed
from beam_jobs.pipeline.launcher import run_extract
from beam_jobs.pipeline.settings import ExtractSettings
from infra.storage.client import build_client

from .conftest import put_evidence

EVIDENCE = "pl-evidence-runners"
MakeSettings = Callable[[str, str], ExtractSettings]
RUNNERS = {
    "multi_processing": ("DirectRunner", ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]),
    "portable_loopback": ("PortableRunner", ["--job_endpoint=embed", "--environment_type=LOOPBACK"]),
}


@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.parametrize("mode", sorted(RUNNERS))
def test_runner(mode: str, make_settings: MakeSettings, shared_data: Path, random_bytes: bytes) -> None:
    settings = make_settings(EVIDENCE, f"pl-catalog-{mode.replace('_', '-')}")
    client = build_client(settings.s3)
    names = ["exif/gaia_nikon_p6000_DSCN0025.jpg", "exif/iphone_4.jpg"]
    for name in names:
        put_evidence(client, settings.s3.buckets.evidence, name=name, data=(shared_data / name).read_bytes())
    put_evidence(client, settings.s3.buckets.evidence, name="random", data=random_bytes)
    runner, flags = RUNNERS[mode]
    summary = run_extract(settings, runner=runner, beam_args=flags)
    assert (summary.rows("photos"), summary.rows("dead_letters")) == (2, 1)
    photos = read_committed(client, settings.s3.buckets.catalog).to_pylist()
    assert {row["position_source"] for row in photos} == {"exif"}
