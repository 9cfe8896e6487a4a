"""Loading indicators: 1,000,000 CSV lines into the indicator store, as `vigil intel import` does.

A CSV of the layout of abuse.ch's lists (first seen, IPv4 address, port, malware family; written once to a
temporary folder) is read by the ``csv`` format, every value validated, and merged into a fresh DuckDB
indicator store with its provenance (``service.take_in``, the records store in SQLite). A file this big is
read by DuckDB itself (``feeds.tabular_native``); the format's parsers are loaded before the clock starts,
as in a server. Printed:

- load: read + validate + merge, the figure the issue's goal (under 3 s) is about;
- the same file pulled again (every indicator known: a feed's next pull);
- the MISP warninglist check of what the source states (about 115 lists), which imports also run;
- reading and validating the file alone by the Python reader (what reads small files, and every file the
  native reader does not take), for comparison.

Usage: ``bench_intel_load.py [--indicators N]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, report, sqlite_database, system_context

from vigil.core.db import Scope
from vigil.intel.feeds.base import feed_parsers
from vigil.intel.feeds.tabular import CsvParser
from vigil.intel.service import flag_indicators, take_in
from vigil.intel.store import IntelStore
from vigil.intel.warninglists import WarninglistIndex

OPTIONS = {"value": "dst_ip", "default_type": "ipv4", "first_seen": "first_seen_utc", "tags": "malware",
           "header": True}
FAMILIES = ("QakBot", "Emotet", "Dridex", "TrickBot", "BumbleBee", "IcedID", "Pikabot")


def write_csv(path: Path, count: int) -> None:
    """Distinct public-looking IPv4 addresses (not in the documentation or private ranges)."""
    with path.open("w", encoding="utf-8") as out:
        out.write("first_seen_utc,dst_ip,dst_port,malware\n")
        for n in range(count):
            out.write(f"2026-10-{n % 28 + 1:02d} 0{n % 10}:15:00,{n // 65536 % 150 + 20}.{n // 256 % 256}."
                      f"{n % 256}.{(n * 7) % 250 + 3},{443 + n % 4},{FAMILIES[n % len(FAMILIES)]}\n")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--indicators", type=int, default=1_000_000)
    args = options.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-intel-") as folder, sqlite_database() as database:
        csv_path = Path(folder) / "feed.csv"
        write_csv(csv_path, args.indicators)
        conditions = f"{args.indicators:,} CSV lines (IPv4, first seen, malware), {machine()}"
        started = time.perf_counter()
        with csv_path.open("rb") as stream:
            read = sum(1 for _ in CsvParser().parse(stream, OPTIONS))
        report("intel load, reading and validating the CSV alone (Python reader)", time.perf_counter() - started,
               "s", conditions)
        feed_parsers()  # loaded once per process (a server has them; `vigil intel import` pays 0.2 s for them)
        store = IntelStore(Path(folder) / "indicators.duckdb")
        try:
            for label in ("intel load, CSV into the indicator store (new)",
                          "intel load, the same CSV again (every indicator known)"):
                started = time.perf_counter()
                with database.transaction(Scope.system()) as session, csv_path.open("rb") as stream:
                    result = take_in(system_context(session), store, stream=stream, fmt="csv", options=OPTIONS,
                                     source="feed:1", replace=True)
                seconds = time.perf_counter() - started
                if result.merge.received != read:
                    raise SystemExit(f"took {result.merge.received:,} of {read:,} indicators")
                report(label, seconds, "s", f"{conditions}, goal under 3 s")
            warninglists = WarninglistIndex.build()
            started = time.perf_counter()
            with database.transaction(Scope.system()) as session:
                flagged = flag_indicators(session, store, source="feed:1", warninglists=warninglists)
            report("intel load, warninglist check of every indicator", time.perf_counter() - started, "s",
                   f"{conditions}, {len(warninglists.names)} lists, {flagged:,} flagged")
        finally:
            store.close()


if __name__ == "__main__":
    main()
