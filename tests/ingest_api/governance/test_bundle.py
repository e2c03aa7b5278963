"""The court bundle end to end: a case, an event opened by its investigator, real witness photos, an audited
search, then `GET /v1/cases/{id}/export` checked byte for byte against what the witnesses sent and the signed
receipts they downloaded. (Subjects left unblurred, on extracted photos: test_extracted_case.py.)"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from PIL import Image
from typer.testing import CliRunner

from infra.cli import app
from ingest_api.governance.audit import AuditEntry
from ingest_api.governance.policy import Role
from ingest_api.services import receipts
from tests.ingest_api.conftest import RunningApi
from tests.ingest_api.governance.helpers import client, staff_tokens

pytestmark = pytest.mark.integration
PHOTOS = ("exif/gaia_nikon_p6000_DSCN0010.jpg", "exif/gaia_nikon_p6000_DSCN0025.jpg")
PLATE_SEARCH = {"fence": {"circle": {"lat": 43.467, "lon": 11.885, "radius_m": 800},
                          "start": "2008-10-22T14:00:00Z", "end": "2008-10-22T18:00:00Z",
                          "include_unplaced": False, "include_untimed": True},
                "case_id": "", "legal_basis": "Art. 100 CPP, order 2026/77", "plate": "RK878AC"}


def test_export_bundle_is_complete_and_verifiable(api: RunningApi, shared_data: Path, tmp_path: Path) -> None:
    tokens = staff_tokens(api, "bundle")
    with client(api, tokens[Role.SUPERVISOR]) as sup, client(api, tokens[Role.INVESTIGATOR]) as ines, \
            client(api, tokens[Role.AUDITOR]) as auditor:
        downloaded = check_bundle(api, shared_data, sup, ines, auditor)
    # `witness export CASE` writes the same receipts, signed with the same key, from the server side
    case_id = json.loads(zipfile.ZipFile(io.BytesIO(downloaded["zip"])).read("case.json"))["case"]["id"]
    env = {"WITNESS_STATE_DIR": str(api.settings.state_dir), "WITNESS_S3__ENDPOINT": api.settings.s3.endpoint,
           "WITNESS_DATABASE_URL": api.settings.effective_database_url}
    written = CliRunner().invoke(app, ["export", case_id, "--out", str(tmp_path / "cli.zip")], env=env)
    assert written.exit_code == 0, written.output
    cli_zip = zipfile.ZipFile(tmp_path / "cli.zip")
    receipts_in_cli = [n for n in cli_zip.namelist() if n.startswith("receipts/")]
    assert receipts_in_cli and all(cli_zip.read(n) == downloaded[n] for n in receipts_in_cli)


def check_bundle(api: RunningApi, shared_data: Path, sup: httpx.Client, ines: httpx.Client,
                 auditor: httpx.Client) -> dict[str, bytes]:
    """Export over HTTP and check it; returns the zip and each receipt the witnesses downloaded, by bundle name."""
    case = sup.post("/v1/cases", json={"reference": "bundle/1", "title": "Tuscany walk"}).json()
    assert sup.put(f"/v1/cases/{case['id']}/investigators/bundle-investigator").status_code == 200
    event = ines.post("/v1/events", json={"case_id": case["id"], "name": "Appeal", "lat": 43.467, "lon": 11.885,
                                          "radius_m": 800, "starts_at": "2008-10-22T14:00:00Z",
                                          "ends_at": "2008-10-22T18:00:00Z", "retention_days": 30})
    assert event.status_code == 201, event.text
    assert event.json()["case_ids"] == [case["id"]] and event.json()["upload_link"].endswith(event.json()["id"])
    sent, downloaded = {}, {}
    for name in PHOTOS:
        data = (shared_data / name).read_bytes()
        stored = httpx.post(f"{api.base_url}/v1/events/{event.json()['id']}/photos", content=data, timeout=60)
        assert stored.status_code == 201, stored.text
        sent[hashlib.sha256(data).hexdigest()] = data
        receipt = httpx.get(f"{api.base_url}/v1/receipts/{stored.json()['submission_token']}", timeout=30)
        assert receipt.status_code == 200 and receipt.content == httpx.get(receipt.url, timeout=30).content  # stable
        downloaded[stored.json()["submission_id"]] = receipt.content
    search = ines.post("/v1/search/plates", json={**PLATE_SEARCH, "case_id": case["id"]})
    assert search.status_code not in (401, 403, 422), search.text  # 503 until an index is published

    response = sup.get(f"/v1/cases/{case['id']}/export")
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == response.headers["x-bundle-sha256"]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = set(archive.namelist())
    sums = {name: digest for digest, name in
            (line.split("  ", 1) for line in archive.read("SHA256SUMS").decode().splitlines())}
    assert set(sums) == names - {"SHA256SUMS"}
    for name, digest in sums.items():
        assert hashlib.sha256(archive.read(name)).hexdigest() == digest, name
    for sha, data in sent.items():
        assert archive.read(f"originals/{sha}.jpg") == data  # byte for byte
        redacted = Image.open(io.BytesIO(archive.read(f"redacted/{sha}.jpg")))
        assert not redacted.getexif() and "exif" not in redacted.info
        assert redacted.size == Image.open(io.BytesIO(data)).size
    manifests = [n for n in names if n.startswith("manifests/")]
    assert sorted(json.loads(archive.read(n))["sha256"] for n in manifests) == sorted(sent)

    entries = [AuditEntry.from_document(json.loads(line)) for line in archive.read("audit/entries.jsonl").splitlines()]
    assert all(entry.content_hash() == entry.hash for entry in entries)
    actions = [entry.action for entry in entries]
    assert actions[:3] == ["case_create", "case_assign", "event_create"] and actions[-1] == "export"
    assert sorted(entries[-1].result_ids) == sorted(sent)
    searches = json.loads(archive.read("searches.json"))
    assert [s["parameters"]["plate"] for s in searches] == ["RK878AC"]
    assert searches[0]["parameters"]["legal_basis"] == PLATE_SEARCH["legal_basis"]
    assert searches[0]["parameters"]["fence"] == PLATE_SEARCH["fence"] and searches[0]["actor"] == "bundle-investigator"
    assert set(json.loads(archive.read("models.json"))) >= {"extracted_by", "detection_models"}
    case_doc = json.loads(archive.read("case.json"))
    assert case_doc["case"]["reference"] == "bundle/1" and len(case_doc["uploads"]) == len(PHOTOS)
    assert case_doc["subjects"] == [] and "HMAC-SHA256" in archive.read("README.txt").decode()
    key = api.settings.receipt_key.get_secret_value().encode()
    assert sorted(n for n in names if n.startswith("receipts/")) == sorted(f"receipts/{s}.json" for s in downloaded)
    for submission_id, witness_copy in downloaded.items():
        bundled = archive.read(f"receipts/{submission_id}.json")
        assert bundled == witness_copy  # byte for byte what the witness holds
        assert receipts.verify(json.loads(bundled), key=key) and not receipts.verify(json.loads(bundled), key=b"x")
        assert case_doc["receipts"][submission_id] == {"file": f"receipts/{submission_id}.json",
                                                       "alg": "HMAC-SHA256", "key_id": api.settings.receipt_key_id}

    audited = auditor.get("/v1/audit", params={"case_id": case["id"]}).json()["entries"]
    assert [e["action"] for e in audited] == actions
    assert sup.get("/v1/audit").status_code == 403
    return {"zip": response.content} | {f"receipts/{s}.json": data for s, data in downloaded.items()}
