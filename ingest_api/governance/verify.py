"""`witness audit verify`: check the audit chain in the database against itself and the locked seals.

    witness audit verify      # exit status 1 and a table of problems (kind, seq, detail) if anything is wrong

Seal problems (a seal hidden by a delete marker, a forged newer version, an unlocked seal) are reported beside
the chain's, since they show someone tried to cover tracks even when the oldest locked copy still proves the chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from minio import Minio
from rich.console import Console
from rich.table import Table

from ingest_api.governance.audit import ChainReport, verify_chain
from ingest_api.governance.audit_store import AuditLog
from ingest_api.governance.seals import SealTarget, load_seals


@dataclass(frozen=True)
class AuditVerification:
    chain: ChainReport
    seal_problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.seal_problems


def verify_audit_log(log: AuditLog, client: Minio, target: SealTarget) -> AuditVerification:
    log.require_table()
    scan = load_seals(client, target)
    return AuditVerification(verify_chain(log.entries(), scan.seals), scan.problems)


def print_verification(result: AuditVerification, console: Console) -> None:
    chain = result.chain
    console.print(
        f"{chain.entries_checked} entries, head seq {chain.head.seq} ({chain.head.hash[:16]}...), "
        f"{chain.seals_checked} seals covering up to seq {chain.sealed_through}"
    )
    if chain.head.seq > chain.sealed_through:
        console.print(f"entries {chain.sealed_through + 1}..{chain.head.seq} are not sealed yet (chain only)")
    if chain.problems:
        table = Table("seq", "problem", "detail", title=f"{len(chain.problems)} chain problems")
        for problem in chain.problems:
            table.add_row(str(problem.seq), problem.kind, problem.detail)
        console.print(table)
    for seal_problem in result.seal_problems:
        console.print(f"[red]seal:[/] {seal_problem}")
    if result.ok:
        console.print("[green]audit chain intact[/]")
