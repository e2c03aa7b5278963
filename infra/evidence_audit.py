"""`witness verify`: re-hash every original in the evidence bucket against the manifests (ransomware, bit rot).

    witness verify            # exit status 1 when anything is wrong, 0 when every original is intact

Every original's current version must hash to the SHA-256 in its key; every manifest's original must exist, and
the exact version it records must hash to its SHA-256. Reported, per object:
- `mismatch`: the bytes a manifest points at (or an original's current bytes) do not hash to the expected SHA-256;
- `overwritten`: a newer version with other bytes sits on top of the version a manifest records — what ransomware
  does to a versioned bucket; the recorded version is checked too, and can be restored if intact;
- `missing`: the original (or the recorded version) is gone, or hidden by a delete marker;
- `orphan`: an original no manifest refers to (an upload interrupted before its manifest, never acknowledged);
- `bad_manifest`: a manifest that is not JSON or not ours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from minio import Minio
from minio.error import S3Error
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from infra.storage.evidence import original_key
from infra.storage.integrity import CHUNK

ProblemKind = Literal["mismatch", "overwritten", "missing", "orphan", "bad_manifest"]
ORIGINALS = "originals/"
MANIFESTS = "manifests/"
_GONE = ("NoSuchKey", "NoSuchObject", "NoSuchVersion", "InvalidArgument")


class ManifestError(ValueError):
    """A manifest document lacks a field or names an object that its SHA-256 does not give."""


@dataclass(frozen=True)
class ManifestRef:
    key: str
    sha256: str
    object_key: str
    object_version: str | None
    size: int


@dataclass(frozen=True)
class EvidenceProblem:
    kind: ProblemKind
    object_key: str
    manifest_key: str | None
    detail: str


@dataclass
class VerifyPlan:
    manifests: list[ManifestRef] = field(default_factory=list)
    latest: dict[str, tuple[str | None, int]] = field(default_factory=dict)  # original key -> (version, size)
    problems: list[EvidenceProblem] = field(default_factory=list)

    def to_hash(self) -> dict[tuple[str, str | None], int]:
        """Each (key, version) to re-hash once, with its size: every current original and every recorded version."""
        wanted = {(key, version): size for key, (version, size) in self.latest.items()}
        for ref in self.manifests:
            if ref.object_version is not None:
                wanted.setdefault((ref.object_key, ref.object_version), ref.size)
        return wanted


@dataclass(frozen=True)
class VerifyReport:
    manifests: int
    originals: int
    bytes_hashed: int
    problems: tuple[EvidenceProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_manifest(key: str, document: dict[str, object]) -> ManifestRef:
    try:
        sha = str(document["sha256"])
        ref = ManifestRef(
            key=key,
            sha256=sha,
            object_key=str(document["object_key"]),
            object_version=None if document.get("object_version") is None else str(document["object_version"]),
            size=int(str(document["size"])),
        )
        expected_key = original_key(sha)
    except (KeyError, ValueError) as error:
        raise ManifestError(f"{key}: {type(error).__name__}: {error}") from error
    if ref.object_key != expected_key:
        raise ManifestError(f"{key}: object_key {ref.object_key!r} is not the key of sha256 {sha} ({expected_key})")
    return ref


def _read_manifest(client: Minio, bucket: str, key: str) -> dict[str, object]:
    response = client.get_object(bucket, key)
    try:
        document = json.loads(response.read())
    finally:
        response.close()
        response.release_conn()
    if not isinstance(document, dict):
        raise ManifestError(f"{key}: not a JSON object")
    return document


def plan_verification(client: Minio, bucket: str) -> VerifyPlan:
    """List current originals and read every manifest (cheap); hashing happens in `run_verification`."""
    plan = VerifyPlan()
    for item in client.list_objects(bucket, prefix=ORIGINALS, recursive=True):
        plan.latest[str(item.object_name)] = (item.version_id, int(item.size or 0))
    for item in client.list_objects(bucket, prefix=MANIFESTS, recursive=True):
        key = str(item.object_name)
        try:
            plan.manifests.append(parse_manifest(key, _read_manifest(client, bucket, key)))
        except (ManifestError, json.JSONDecodeError) as error:
            plan.problems.append(EvidenceProblem("bad_manifest", "", key, str(error)))
    return plan


def _hash_version(
    client: Minio, bucket: str, key: str, version: str | None, advance: Callable[[int], None]
) -> str | None:
    """SHA-256 of one object version, or None when it does not exist (any more)."""
    try:
        response = client.get_object(bucket, key, version_id=version)
    except S3Error as error:
        if error.code in _GONE:
            return None
        raise
    digest = hashlib.sha256()
    try:
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            advance(len(chunk))
    finally:
        response.close()
        response.release_conn()
    return digest.hexdigest()


def _classify(
    ref: ManifestRef, plan: VerifyPlan, hashes: dict[tuple[str, str | None], str | None]
) -> list[tuple[ProblemKind, str]]:
    """Problems of one manifest as (kind, detail), given the hashes (pure)."""
    found: list[tuple[ProblemKind, str]] = []
    recorded_ok = True
    if ref.object_version is not None:
        recorded = hashes.get((ref.object_key, ref.object_version))
        if recorded is None:
            recorded_ok = False
            found.append(("missing", f"recorded version {ref.object_version} is gone"))
        elif recorded != ref.sha256:
            recorded_ok = False
            found.append(("mismatch", f"recorded version {ref.object_version} hashes to {recorded}"))
    latest = plan.latest.get(ref.object_key)
    if latest is None:
        restore = f"; version {ref.object_version} is intact, restore it" if ref.object_version and recorded_ok else ""
        found.append(("missing", f"no current version (deleted or hidden by a delete marker){restore}"))
    elif latest[0] != ref.object_version or ref.object_version is None:
        current = hashes.get((ref.object_key, latest[0]))
        if current != ref.sha256:
            kind: ProblemKind = "mismatch" if ref.object_version is None else "overwritten"
            intact = " (the recorded version is intact)" if ref.object_version and recorded_ok else ""
            found.append((kind, f"current version {latest[0]} hashes to {current}{intact}"))
    return found


def run_verification(
    client: Minio, bucket: str, plan: VerifyPlan, advance: Callable[[int], None] = lambda _n: None
) -> VerifyReport:
    hashes: dict[tuple[str, str | None], str | None] = {}
    hashed = 0

    def counted(n: int) -> None:
        nonlocal hashed
        hashed += n
        advance(n)

    for (key, version), size in plan.to_hash().items():
        before = hashed
        hashes[(key, version)] = _hash_version(client, bucket, key, version, counted)
        advance(max(0, size - (hashed - before)))  # a missing or shrunk object still completes its share of the bar
    problems = list(plan.problems)
    referenced: set[str] = set()
    for ref in plan.manifests:
        referenced.add(ref.object_key)
        for kind, detail in _classify(ref, plan, hashes):
            problems.append(EvidenceProblem(kind, ref.object_key, ref.key, detail))
    for key, (version, _size) in sorted(plan.latest.items()):
        if key in referenced:
            continue
        problems.append(EvidenceProblem("orphan", key, None, "no manifest refers to this original"))
        current = hashes.get((key, version))
        if current != key.rsplit("/", 1)[-1]:
            problems.append(EvidenceProblem("mismatch", key, None, f"current version {version} hashes to {current}"))
    return VerifyReport(len(plan.manifests), len(plan.latest), hashed, tuple(problems))


def verify_with_progress(client: Minio, bucket: str, console: Console) -> VerifyReport:
    """Plan, hash with a rich progress bar (bytes), print the problems; the CLI exits non-zero unless `ok`."""
    with console.status(f"listing s3://{bucket} and reading manifests"):
        plan = plan_verification(client, bucket)
    columns = (TextColumn("re-hashing"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("hash", total=sum(plan.to_hash().values()))
        report = run_verification(client, bucket, plan, lambda n: progress.advance(task, n))
    console.print(f"{report.manifests} manifests, {report.originals} originals, {report.bytes_hashed} bytes re-hashed")
    if report.problems:
        table = Table("problem", "original", "manifest", "detail", title=f"{len(report.problems)} problems")
        for problem in report.problems:
            table.add_row(problem.kind, problem.object_key, problem.manifest_key or "-", problem.detail)
        console.print(table)
    else:
        console.print("[green]every original is intact and accounted for[/]")
    return report
