"""The append-only SQL store of the audit chain (SQLAlchemy Core, its own `MetaData`).

    log = AuditLog(engine)
    log.append(AuditRecord(actor="u-17", role="investigator", action="search", case_id="c-3", parameters={...}))

Safe from many threads (a lock serialises appends in one process) and many processes: `seq` is the primary key and
`prev_hash` is unique, so two writers that read the same head cannot both commit — the loser retries on the new
head and the chain never forks. Triggers refuse UPDATE and DELETE on SQLite and PostgreSQL; they stop mistakes and
the application's own account, not a database owner, which is why the chain and the seals exist.
The table is created by the Alembic migration (`audit_metadata.create_all` is for tests).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Engine,
    MetaData,
    Row,
    String,
    Table,
    Text,
    event,
    insert,
    inspect,
    select,
)
from sqlalchemy.exc import IntegrityError

from ingest_api.governance.audit import GENESIS, AuditEntry, AuditRecord, ChainHead, next_entry

APPEND_RETRIES = 8

audit_metadata = MetaData()
audit_entries = Table(
    "audit_entries",
    audit_metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("case_id", String(64), nullable=True, index=True),
    Column("parameters", Text, nullable=False),
    Column("result_ids", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
)

# Refuse edits at the database too (copy these into the Alembic migration).
SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
    "CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries "
    "BEGIN SELECT RAISE(ABORT, 'audit_entries is append-only'); END",
]
POSTGRES_APPEND_ONLY = [
    "CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_entries is append-only'; END $$",
    "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entries "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()",
]
for _statement in SQLITE_APPEND_ONLY:
    event.listen(audit_entries, "after_create", DDL(_statement).execute_if(dialect="sqlite"))
for _statement in POSTGRES_APPEND_ONLY:
    event.listen(audit_entries, "after_create", DDL(_statement).execute_if(dialect="postgresql"))


class AuditStoreError(Exception):
    """The audit log could not be written or read (missing table, endless write conflicts)."""


def _row(entry: AuditEntry) -> dict[str, object]:
    row = entry.to_document()
    row["result_ids"] = json.dumps(list(entry.result_ids))
    return row


def _entry(row: Row[Any]) -> AuditEntry:
    mapping = dict(row._mapping)
    mapping["result_ids"] = json.loads(mapping["result_ids"])
    return AuditEntry.from_document(mapping)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AuditLog:
    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utc_now) -> None:
        self._engine = engine
        self._clock = clock
        self._lock = threading.Lock()

    def require_table(self) -> None:
        if not inspect(self._engine).has_table(audit_entries.name):
            raise AuditStoreError(f"no {audit_entries.name!r} table in {self._engine.url!r}: run `witness db upgrade`")

    def append(self, record: AuditRecord) -> AuditEntry:
        """Append one entry after the current head and return it (committed)."""
        with self._lock:
            for _ in range(APPEND_RETRIES):
                try:
                    with self._engine.begin() as connection:
                        last = connection.execute(
                            select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc())
                        ).first()
                        head = ChainHead(int(last.seq), str(last.hash)) if last else GENESIS
                        entry = next_entry(head, record, self._clock())
                        connection.execute(insert(audit_entries).values(**_row(entry)))
                    return entry
                except IntegrityError:
                    continue  # another process appended first; chain onto its entry instead
        raise AuditStoreError(f"audit append lost {APPEND_RETRIES} races in a row; is something flooding the log?")

    def head(self) -> ChainHead:
        with self._engine.connect() as connection:
            last = connection.execute(
                select(audit_entries.c.seq, audit_entries.c.hash).order_by(audit_entries.c.seq.desc())
            ).first()
        return ChainHead(int(last.seq), str(last.hash)) if last else GENESIS

    def entries(self, *, after_seq: int = 0, limit: int | None = None) -> list[AuditEntry]:
        """Entries with seq > after_seq, in seq order."""
        query = select(audit_entries).where(audit_entries.c.seq > after_seq).order_by(audit_entries.c.seq)
        if limit is not None:
            query = query.limit(limit)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]

    def entries_for_case(self, case_id: str) -> list[AuditEntry]:
        query = select(audit_entries).where(audit_entries.c.case_id == case_id).order_by(audit_entries.c.seq)
        with self._engine.connect() as connection:
            return [_entry(row) for row in connection.execute(query)]
