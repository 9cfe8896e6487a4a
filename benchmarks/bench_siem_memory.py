"""SIEM ingest memory: the process's resident memory while 10,000,000 events go through spool → pipeline → DuckDB.

Events are generated on the fly (``_siem_data.event``, about 450 bytes as JSON) and submitted to ``Siem``
in batches of 10,000 as the HTTP receiver does; the pipeline stores what the spool holds whenever one
spool read's worth is waiting. The resident set size (``VmRSS``) is sampled after every
store; the figures are the RSS after the first 1,000,000 events, at the end, and the peak. Flat means
the end and the peak stay near the 1,000,000 figure instead of growing with the events stored.
Usage: ``bench_siem_memory.py [--events N] [--memory-limit 512MB]``.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

from _common import machine, report
from _siem_data import lines

from vigil.core.config import Settings
from vigil.siem import runtime
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import MAX_RECORDS
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta
from vigil.siem.store.duckdb import DEFAULT_MEMORY_LIMIT, DuckDBEventStore

BATCH = 10_000
STORE_EVERY = max(MAX_RECORDS // BATCH, 1)  # batches: what one spool read of the pipeline holds


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=10_000_000)
    options.add_argument("--memory-limit", help="DuckDB's memory_limit for the store, e.g. 512MB "
                         f"(default: the store's, {DEFAULT_MEMORY_LIMIT})")
    args = options.parse_args()
    total = args.events
    if args.memory_limit:  # what a store setting passed by the runtime would do
        runtime.DuckDBEventStore = functools.partial(  # type: ignore[misc]
            DuckDBEventStore, memory_limit=args.memory_limit)
    samples: list[tuple[int, float]] = []
    duckdb_mib = 0.0
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        siem = Siem(Settings(data_dir=Path(folder)))
        siem.source_configs = lambda name: SourceConfig(format="json")
        meta = BatchMeta(source="http:bench", unit_id=1, format="json", transport="http")
        start_rss = rss_mib()
        started = time.perf_counter()
        try:
            for number, first in enumerate(range(0, total, BATCH)):
                siem.submit(list(lines(min(BATCH, total - first), first)), meta)
                if number % STORE_EVERY == STORE_EVERY - 1 or first + BATCH >= total:
                    siem.drain(timeout=3600)
                    samples.append((min(first + BATCH, total), rss_mib()))
                    if len(samples) % 10 == 0:
                        print(f"   {samples[-1][0]:,} events, RSS {samples[-1][1]:,.0f} MiB "
                              f"({time.perf_counter() - started:.0f} s)", flush=True)
            stored = siem.store.count()
            store = siem.store
            if isinstance(store, DuckDBEventStore):
                duckdb_mib = store.memory_bytes() / 1024**2
            size = Path(folder, "events.duckdb").stat().st_size / 1024**2
        finally:
            siem.stop()
    elapsed = time.perf_counter() - started
    if stored != total:
        raise SystemExit(f"stored {stored:,} events of {total:,}")
    limit = f"DuckDB memory_limit {args.memory_limit or DEFAULT_MEMORY_LIMIT}"
    conditions = (f"{total:,} events of ~450 B in batches of {BATCH:,}, {limit}, store file {size:,.0f} MiB, "
                  f"{elapsed:,.0f} s, {machine()}")
    first_million = next((rss for count, rss in samples if count >= 1_000_000), samples[-1][1])
    report("siem ingest memory, RSS before ingest", start_rss, "MiB", conditions)
    report("siem ingest memory, RSS after 1,000,000 events", first_million, "MiB", conditions)
    report(f"siem ingest memory, RSS after {total:,} events", samples[-1][1], "MiB", conditions)
    report("siem ingest memory, peak RSS", max(rss for _, rss in samples), "MiB", conditions)
    report("siem ingest memory, held by DuckDB at the end", duckdb_mib, "MiB", conditions)


if __name__ == "__main__":
    main()
