"""Event store append throughput: events/s through DuckDBEventStore.append, one transaction per batch.

100,000 generated ECS-shaped events (nested, about 400 bytes as JSON) appended in batches of 10,000 to
a fresh DuckDB file, each batch with a spool position, as the pipeline does. The figure covers
extracting the typed columns, serialising the document and the bulk append. A second figure appends
the same events given as JSON lines (``append_json``, as they come from an NDJSON spool): no Python
object per event.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from _common import machine, report

from vigil.siem.store.duckdb import DuckDBEventStore

TOTAL = 100_000
BATCH = 10_000
START = datetime(2026, 11, 1, tzinfo=UTC)
ACTIONS = ("ssh_login", "logon", "process_started", "connection", "dns_query")


def event(n: int) -> dict[str, Any]:
    return {
        "@timestamp": START + timedelta(milliseconds=37 * n),
        "event": {"kind": "event", "module": "system", "dataset": "system.auth", "category": ["authentication"],
                  "type": ["info"], "action": ACTIONS[n % len(ACTIONS)], "outcome": "failure" if n % 3 else "success"},
        "host": {"hostname": f"web{n % 40:02d}.corp.example"},
        "source": {"ip": f"10.{n % 7}.{n % 251}.{n % 199}", "port": 1024 + n % 60000},
        "destination": {"ip": "192.0.2.10", "port": 22},
        "user": {"name": f"user{n % 500}"},
        "process": {"name": "sshd", "pid": 1000 + n % 30000},
        "network": {"transport": "tcp"},
        "message": f"Failed password for user{n % 500} from 10.{n % 7}.{n % 251}.{n % 199} port {1024 + n % 60000}",
        "related": {"ip": [f"10.{n % 7}.{n % 251}.{n % 199}"], "user": [f"user{n % 500}"]},
    }


def timed(append: Callable[[DuckDBEventStore, int], object]) -> float:
    """Events/s of ``append(store, batch number)`` over every batch, on a fresh store file."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        store = DuckDBEventStore(Path(folder) / "events.duckdb")
        try:
            started = time.perf_counter()
            for number in range(TOTAL // BATCH):
                append(store, number)
            elapsed = time.perf_counter() - started
            assert store.count() == TOTAL
        finally:
            store.close()
    return TOTAL / elapsed


def main() -> None:
    batches = [[event(n) for n in range(first, first + BATCH)] for first in range(0, TOTAL, BATCH)]
    lines = [[orjson.dumps(item) for item in batch] for batch in batches]
    conditions = f"{TOTAL:,} ECS-shaped events in batches of {BATCH:,}, one transaction each, {machine()}"
    rate = timed(lambda store, n: store.append(batches[n], unit_id=1, source="bench", spool_position=(n, 0)))
    report("event store append, DuckDB, Python events", rate, "events/s", conditions)
    rate = timed(lambda store, n: store.append_json(lines[n], unit_id=1, source="bench", spool_position=(n, 0)))
    report("event store append, DuckDB, JSON lines", rate, "events/s", conditions)


if __name__ == "__main__":
    main()
