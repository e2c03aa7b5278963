"""`witness demo` end to end: a real S3 server, the API on loopback, the Beam job, the indexes, audited searches.

The demo runs twice on one temp state folder: the second run must find the same accounts, case, event and
photos, extract nothing new, leave the indexes unchanged and answer the same searches.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from infra import local_stack, s3server
from infra.demo.accounts import DemoRefused, require_local
from infra.demo.run import INCIDENT_LAT, INCIDENT_LON, INCIDENT_START, DemoResult, run_demo
from infra.demo.samples import demo_photos, encode_jpeg
from infra.demo.searches import MISREMEMBERED_PLATE
from ingest_api.settings import ApiSettings

FACE_PHOTOS = {"witness-01.jpg", "witness-02.jpg", "witness-04.jpg"}
BLACK_CAR_PHOTOS = {"witness-01.jpg", "witness-02.jpg", "witness-03.jpg"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, DemoResult, str]]:
    state: Path = tmp_path_factory.mktemp("demo-state")
    settings = ApiSettings.from_mapping({
        "state_dir": state, "port": _free_port(),
        "s3": {"endpoint": f"127.0.0.1:{s3server.find_free_port_base()}"},
    })
    output = io.StringIO()
    console = Console(file=output, width=200)
    try:
        first = run_demo(settings, console)
        second = run_demo(settings, console)
        yield first, second, output.getvalue()
    finally:
        s3server.stop(local_stack.s3_data_dir(settings))


@pytest.mark.integration
def test_photos_are_stored_and_extracted(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    first, _, _ = demo_runs
    assert first.accounts_created == ["demo-supervisor", "demo-investigator"]
    assert [r.status for r in first.receipts] == ["stored"] * 6
    assert len({r.submission_id for r in first.receipts}) == 3  # three witnesses
    assert first.extracted.run_id is not None and first.extracted.photos == 6
    found = {first.photo_names[photo]: labels for photo, labels in first.extracted.found.items()}
    assert {name for name, labels in found.items() if "face" in labels} == FACE_PHOTOS
    assert {name for name, labels in found.items() if "GH417KT" in labels} == BLACK_CAR_PHOTOS
    assert set(first.indexes.values()) == {"built"}


@pytest.mark.integration
def test_face_search_finds_the_bystander_in_the_other_photos(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    face = demo_runs[0].searches["face"]
    assert face.photos == FACE_PHOTOS
    assert face.hits[0].photo == "witness-01.jpg"  # the photo the query was cropped from
    assert min(hit.score for hit in face.hits) > 0.6  # SFace: same person well above 0.5


@pytest.mark.integration
def test_vehicle_searches_find_the_black_car(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    searches = demo_runs[0].searches
    assert searches["black car"].photos == BLACK_CAR_PHOTOS
    assert {hit.photo for hit in searches["car by image"].hits[:3]} == BLACK_CAR_PHOTOS


@pytest.mark.integration
def test_plate_search_forgives_one_wrong_character(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    plate = demo_runs[0].searches["plate"]
    assert MISREMEMBERED_PLATE != "GH-417-KT"
    assert plate.photos == BLACK_CAR_PHOTOS
    assert {hit.detail for hit in plate.hits} == {"GH417KT"}


@pytest.mark.integration
def test_searches_are_audited_and_the_chain_verifies(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    for result in demo_runs[:2]:
        assert (result.audit.searches, result.audit.results_logged) == (4, 4)
        assert result.audit.ok and result.audit.sealed_through == result.audit.entries
    assert "audit chain intact" in demo_runs[2]


@pytest.mark.integration
def test_rerun_reuses_case_event_and_photos(demo_runs: tuple[DemoResult, DemoResult, str]) -> None:
    first, second, _ = demo_runs
    assert (second.case_id, second.event_id) == (first.case_id, first.event_id)
    assert second.accounts_created == []
    assert [r.status for r in second.receipts] == ["already stored"] * 6
    assert second.photo_names == first.photo_names
    assert second.extracted.run_id is None and second.extracted.photos == 6
    assert set(second.indexes.values()) == {"unchanged"}
    assert {k: v.photos for k, v in second.searches.items()} == {k: v.photos for k, v in first.searches.items()}


def test_sample_photos_are_byte_identical_across_runs() -> None:
    """Re-runs recognise the photos already stored by their SHA-256, so rendering must be deterministic."""
    photo = demo_photos(INCIDENT_LAT, INCIDENT_LON, INCIDENT_START)[0]
    assert encode_jpeg(photo, seed=0) == encode_jpeg(photo, seed=0)


def test_demo_refuses_production_mode(tmp_path: Path) -> None:
    # model_copy skips validation: production's own required secrets are not what this test is about.
    settings = ApiSettings.from_mapping({"state_dir": tmp_path}).model_copy(update={"mode": "production"})
    with pytest.raises(DemoRefused, match="local mode only"):
        require_local(settings)
