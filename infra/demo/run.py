"""`witness demo`: the whole product on one laptop, governance on, in about a minute.

    witness demo     # local mode only: it creates demo accounts with a published password

1. Staff: demo accounts (supervisor, investigator); the supervisor opens a case and assigns the investigator,
   who opens the witness appeal (event) for the case, all through the API.
2. Witnesses: three of them send six geotagged photos; receipts only after each photo is stored and verified.
3. Data engineer: the Beam extraction job (DirectRunner) and the FAISS indexes.
4. Investigator: fenced face, vehicle and plate searches, each audited; then the audit chain is verified.
Re-running on the same state folder reuses the accounts, case, event and photos.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rich.console import Console

from beam_jobs.extraction.photo import photo_id_for
from infra import local_stack
from infra.demo.accounts import INVESTIGATOR, SUPERVISOR, ensure_accounts, require_local
from infra.demo.audit import AuditSummary, audit_head, check_audit
from infra.demo.processing import Extracted, build_indexes, extract
from infra.demo.samples import demo_photos
from infra.demo.searches import SearchResult, print_results, run_searches
from infra.demo.staff_client import Incident, ensure_case, ensure_event, sign_in, wait_for_indexes
from infra.demo.uploads import Receipt, receipts_table, send_photos
from ingest_api.settings import ApiSettings

# Place de la République, Paris, on the evening of 13 November 2015.
INCIDENT_LAT, INCIDENT_LON = 48.8674, 2.3636
INCIDENT_START = datetime(2015, 11, 13, 20, 30, tzinfo=UTC)
INCIDENT = Incident(name="Demo: Paris, 13 November 2015", lat=INCIDENT_LAT, lon=INCIDENT_LON, radius_m=1500,
                    starts_at=INCIDENT_START, ends_at=INCIDENT_START + timedelta(hours=4))
CASE_REFERENCE = "DEMO-2015-1113"
CASE_TITLE = "Demo: incident near Place de la Republique, 13 November 2015"
SEARCHED_KINDS = ("face", "vehicle", "plate")


@dataclass(frozen=True)
class DemoResult:
    case_id: str
    event_id: str
    accounts_created: list[str]
    receipts: list[Receipt]
    photo_names: dict[str, str]  # photo id -> sample file name
    extracted: Extracted
    indexes: dict[str, str]  # kind -> built / updated / unchanged
    searches: dict[str, SearchResult]  # "face", "black car", "car by image", "plate"
    audit: AuditSummary
    seconds: float


def run_demo(settings: ApiSettings, console: Console) -> DemoResult:
    started = time.perf_counter()
    require_local(settings)
    local_stack.prepare(settings)
    console.rule("1. Staff: a supervisor opens a case, the investigator opens the witness appeal")
    created = ensure_accounts(settings)
    with local_stack.api_in_background(settings) as base_url:
        with sign_in(base_url, SUPERVISOR) as supervisor:
            case_id = ensure_case(supervisor, reference=CASE_REFERENCE, title=CASE_TITLE,
                                  investigator=INVESTIGATOR.username)
        with sign_in(base_url, INVESTIGATOR) as investigator:
            event_id = ensure_event(investigator, case_id=case_id, incident=INCIDENT)
        console.print(f"case {CASE_REFERENCE} ({case_id}) assigned to {INVESTIGATOR.username}; event {event_id}"
                      + (f"; accounts created now: {', '.join(created)}" if created else ""))
        console.rule("2. Witnesses: three phones send six photos")
        photos = demo_photos(INCIDENT_LAT, INCIDENT_LON, INCIDENT_START + timedelta(minutes=10))
        receipts = send_photos(settings, base_url, event_id, photos, console)
    console.print(receipts_table(event_id, receipts))
    names = {photo_id_for(event_id=event_id, submission_id=r.submission_id, sha256=r.sha256): r.file
             for r in receipts}
    console.rule("3. Data engineer: extraction (Apache Beam) and indexes (FAISS)")
    extracted = extract(settings, event_id, names, console)
    indexes = build_indexes(settings, console)
    console.rule(f"4. Investigator {INVESTIGATOR.username}: fenced searches for case {CASE_REFERENCE}")
    since = audit_head(settings)
    # A fresh API process loads the just-published index versions as it starts.
    with local_stack.api_in_background(settings) as base_url, sign_in(base_url, INVESTIGATOR) as investigator:
        wait_for_indexes(investigator, SEARCHED_KINDS)
        results = run_searches(investigator, case_id=case_id, incident=INCIDENT, photos=photos, names=names)
    print_results(results, console)
    audit = check_audit(settings, case_id=case_id, since_seq=since, console=console)
    searches = dict(zip(("face", "black car", "car by image", "plate"), results, strict=True))
    return DemoResult(case_id, event_id, created, receipts, names, extracted, indexes, searches, audit,
                      time.perf_counter() - started)


def print_next_steps(settings: ApiSettings, console: Console) -> None:
    """Where to look next: the console with the demo credentials, and how to keep the stack up."""
    base = f"http://{settings.host}:{settings.port}"
    console.print(f"Investigator console: {base}/console  (sign in as {INVESTIGATOR.username} or "
                  f"{SUPERVISOR.username}, password {INVESTIGATOR.password!r}: demo accounts, local mode only)")
    console.print("The API stopped with the demo; `witness up` serves it again on the same data "
                  f"(S3 server still running, data in {local_stack.s3_data_dir(settings)}; `witness s3 stop` ends it).")
