"""Audit chain verification throughput: records/s that core.audit.verify checks (`vigil audit verify`)."""

from __future__ import annotations

import time

from _common import each_backend, machine, report, skip, system_context

from vigil.core import audit
from vigil.core.db import Database, Scope

RECORDS = 50_000
BATCH = 1_000


def fill(database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        actor = system_context(session).actor
    for first in range(0, RECORDS, BATCH):
        with database.transaction(Scope.system()) as session:
            for n in range(first, first + BATCH):
                audit.record(session, actor=actor, action="bench.verify", target_type="bench",
                             target_id=n, details={"n": n, "note": "a typical small details object"})


def verify(database: Database) -> float:
    with database.transaction(Scope.system()) as session:
        started = time.perf_counter()
        result = audit.verify(session)
        elapsed = time.perf_counter() - started
    if not result.ok or result.checked != RECORDS:
        raise SystemExit(f"verification did not pass over {RECORDS} records: {result}")
    return result.checked / elapsed


def main() -> None:
    with each_backend() as backends:
        for label, database, reason in backends:
            name = f"audit verify, {label}"
            if database is None:
                skip(name, reason)
                continue
            fill(database)
            report(name, verify(database), "records/s",
                   f"{RECORDS:,} chained records, one pass, {machine()}")


if __name__ == "__main__":
    main()
