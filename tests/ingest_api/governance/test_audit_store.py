"""The SQL audit store on a real SQLite file: appends from many threads, append-only triggers, no forks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, text
from sqlalchemy.exc import DatabaseError, IntegrityError

from ingest_api.db.session import build_engine
from ingest_api.governance.audit import AuditRecord, verify_chain
from ingest_api.governance.audit_store import AuditLog, AuditStoreError, audit_entries, audit_metadata


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = build_engine(f"sqlite:///{tmp_path / 'audit.sqlite3'}")
    audit_metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_missing_table_is_a_clear_error(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    try:
        with pytest.raises(AuditStoreError, match="witness db upgrade"):
            AuditLog(engine).require_table()
    finally:
        engine.dispose()


def test_appends_from_many_threads_form_one_chain(engine: Engine) -> None:
    log = AuditLog(engine)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                log.append(
                    AuditRecord(f"user-{n}", "investigator", "view", case_id=f"case-{n % 2}", result_ids=[f"p-{n}-{i}"])
                )
        except BaseException as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    entries = log.entries()
    report = verify_chain(entries)
    assert report.ok and [e.seq for e in entries] == list(range(1, 91)) and log.head() == report.head
    assert len(log.entries_for_case("case-1")) == 45
    assert [e.seq for e in log.entries(after_seq=85, limit=3)] == [86, 87, 88]


def test_rows_cannot_be_updated_or_deleted(engine: Engine) -> None:
    log = AuditLog(engine)
    log.append(AuditRecord("u", "investigator", "search", case_id="c", parameters={"q": 1}))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text("UPDATE audit_entries SET actor = 'x'"))
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_entries"))
    assert verify_chain(log.entries()).ok


def test_a_fork_of_the_chain_is_refused(engine: Engine) -> None:
    log = AuditLog(engine)
    first = log.append(AuditRecord("u", "investigator", "login"))
    second = log.append(AuditRecord("u", "investigator", "search"))
    forged = second.to_document() | {"seq": 3, "actor": "intruder", "hash": "f" * 64}
    forged["result_ids"] = "[]"
    with pytest.raises(IntegrityError), engine.begin() as connection:  # same prev_hash as entry 2
        connection.execute(insert(audit_entries).values(**forged))
    assert [e.seq for e in log.entries()] == [1, 2] and second.prev_hash == first.hash


def test_tampering_by_a_database_owner_is_detected(engine: Engine) -> None:
    log = AuditLog(engine)
    for i in range(5):
        log.append(AuditRecord("u", "investigator", "search", parameters={"i": i}))
    with engine.begin() as connection:  # an owner can drop the triggers; the chain still tells
        connection.execute(text("DROP TRIGGER audit_entries_no_update"))
        connection.execute(text("DROP TRIGGER audit_entries_no_delete"))
        connection.execute(text("UPDATE audit_entries SET parameters = :p WHERE seq = 2"), {"p": '{"i":99}'})
        connection.execute(text("DELETE FROM audit_entries WHERE seq = 4"))
    found = {(p.seq, p.kind) for p in verify_chain(log.entries()).problems}
    assert found == {(2, "altered"), (4, "missing")}
