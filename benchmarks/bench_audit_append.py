"""Audit append throughput: records/s through core.audit.record, one transaction per batch.

Each transaction locks the chain head, links its records and commits, as a request does. Batches of
1 are the usual case (one action per request); batches of 100 show what grouping buys.
"""

from __future__ import annotations

import time

from _common import each_backend, machine, report, skip, system_context

from vigil.core import audit
from vigil.core.db import Database, Scope

# (records per transaction, records in all) per backend: bounded, a few seconds each.
RUNS = ((1, 1_000), (100, 20_000))


def append(database: Database, *, batch: int, total: int) -> float:
    """Append ``total`` records in transactions of ``batch``; return records per second."""
    with database.transaction(Scope.system()) as session:
        actor = system_context(session).actor
    started = time.perf_counter()
    for first in range(0, total, batch):
        with database.transaction(Scope.system()) as session:
            for n in range(first, min(first + batch, total)):
                audit.record(session, actor=actor, action="bench.append", target_type="bench",
                             target_id=n, details={"n": n})
    return total / (time.perf_counter() - started)


def main() -> None:
    with each_backend() as backends:
        for label, database, reason in backends:
            for batch, total in RUNS:
                name = f"audit append, {label}, batches of {batch}"
                if database is None:
                    skip(name, reason)
                    continue
                rate = append(database, batch=batch, total=total)
                report(name, rate, "records/s",
                       f"{total:,} records, one transaction per batch, {machine()}")


if __name__ == "__main__":
    main()
