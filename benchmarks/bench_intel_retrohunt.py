"""Retro-hunt: 10,000 new indicators (5,000 IPv4 addresses, 5,000 domains) looked for in 10,000,000 stored
events (a month), next to the same join written by hand in DuckDB SQL.

The event store is the one ``bench_siem_search.py`` builds (and caches). The indicators are random but
for two that the generated events carry (one destination address, one DNS name), so the hunt finds
some hundreds of thousands of events and records their sightings and alerts. Vigil's figure is the whole
``retro_hunt``: the join inside the event store (addresses in source and destination; domains and their
subdomains in DNS questions and URL domains), then the sightings and alerts in the records store (SQLite).
The hand-written SQL does exact matches of the same values in the same columns and counts per value.

A last figure: 1,000 SHA-256 indicators (none of them in the events), which no typed column holds for a
retro-hunt: the event store reads every document of the month once for hash tokens (one run).

Usage: ``bench_intel_retrohunt.py [--events N] [--indicators N] [--runs N]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import machine, report, sqlite_database
from _siem_data import CACHE
from bench_siem_search import DAYS, MONTH_START, build
from sqlalchemy import delete

from vigil.core.db import Scope
from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.models import IntelSighting
from vigil.intel.retrohunt import retro_hunt
from vigil.intel.store import IntelStore
from vigil.siem.store.duckdb import DuckDBEventStore

HAND = """WITH ips AS (SELECT unnest($ips) AS value), names AS (SELECT unnest($names) AS value)
SELECT value, count(*) FROM (
  SELECT e.source_ip AS value FROM events e JOIN ips ON e.source_ip = ips.value WHERE e.ts >= $since AND e.ts < $until
  UNION ALL
  SELECT e.destination_ip FROM events e JOIN ips ON e.destination_ip = ips.value WHERE e.ts >= $since AND e.ts < $until
  UNION ALL
  SELECT e.dns_question_name FROM events e JOIN names ON e.dns_question_name = names.value
  WHERE e.ts >= $since AND e.ts < $until
  UNION ALL
  SELECT e.url_domain FROM events e JOIN names ON e.url_domain = names.value WHERE e.ts >= $since AND e.ts < $until)
GROUP BY value"""


def indicators(count: int) -> list[ParsedIndicator]:
    picker = random.Random(7)
    half = count // 2
    ips = {f"{picker.randint(11, 223)}.{picker.randint(0, 255)}.{picker.randint(0, 255)}.{picker.randint(1, 254)}"
           for _ in range(half * 2)}
    names = {f"{''.join(picker.choices('abcdefghijklmnopqrstuvwxyz', k=10))}.{picker.choice(['com', 'net', 'ru'])}"
             for _ in range(half * 2)}
    chosen_ips = ["192.0.2.5", *sorted(ips)[:half - 1]]
    chosen_names = ["app3.example.com", *sorted(names)[:count - half - 1]]
    return ([ParsedIndicator(IndicatorType.IPV4, v) for v in chosen_ips]
            + [ParsedIndicator(IndicatorType.DOMAIN, v) for v in chosen_names])


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=10_000_000)
    options.add_argument("--indicators", type=int, default=10_000)
    options.add_argument("--runs", type=int, default=5)
    args = options.parse_args()
    events = DuckDBEventStore(build(CACHE / f"search-{args.events}", args.events))
    until = MONTH_START + timedelta(days=DAYS)
    total = events.count()
    conditions = (f"{args.indicators:,} indicators (IPv4 and domains) over {total:,} events of {DAYS} days, "
                  f"median of {args.runs}, {machine()}")
    wanted = indicators(args.indicators)
    try:
        with tempfile.TemporaryDirectory(prefix="vigil-bench-retro-") as folder, sqlite_database() as database:
            store = IntelStore(Path(folder) / "indicators.duckdb")
            merged = store.merge(wanted, source="bench")
            triples = list(store.triples(merged.fresh))
            vigil_times, hits = [], 0
            for _ in range(args.runs):
                with database.transaction(Scope.system()) as session:  # a fresh records store each run
                    session.execute(delete(IntelSighting))
                started = time.perf_counter()
                result = retro_hunt(database, store, events, indicators=triples, trigger="bench",
                                    lookback_days=DAYS, now=until)
                vigil_times.append(time.perf_counter() - started)
                hits = result.hits
            hashes = store.merge([ParsedIndicator(IndicatorType.SHA256, f"{random.Random(n).getrandbits(256):064x}")
                                  for n in range(1_000)], source="bench-hashes")
            started = time.perf_counter()
            retro_hunt(database, store, events, indicators=list(store.triples(hashes.fresh)), trigger="bench",
                       lookback_days=DAYS, now=until)
            hash_seconds = time.perf_counter() - started
            store.close()
        cursor = events._db.cursor()
        ips = [i.value for i in wanted if i.type is IndicatorType.IPV4]
        names = [i.value for i in wanted if i.type is IndicatorType.DOMAIN]
        hand_times, hand_hits = [], 0
        for _ in range(args.runs):
            started = time.perf_counter()
            rows = cursor.execute(HAND, {"ips": ips, "names": names, "since": MONTH_START, "until": until}).fetchall()
            hand_times.append(time.perf_counter() - started)
            hand_hits = sum(int(r[1]) for r in rows)
        cursor.close()
    finally:
        events.close()
    vigil_s, hand_s = statistics.median(vigil_times), statistics.median(hand_times)
    report("intel retro-hunt, Vigil (join in the event store, sightings and alerts recorded)", vigil_s, "s",
           f"{conditions}, {hits:,} events found, goal under 1 s")
    report("intel retro-hunt, hand-written DuckDB SQL (exact matches, counts only)", hand_s, "s",
           f"{conditions}, {hand_hits:,} events found")
    report("intel retro-hunt, Vigil / SQL", vigil_s / hand_s, "x", conditions)
    report("intel retro-hunt, 1,000 SHA-256 looked for in the documents", hash_seconds, "s",
           f"{total:,} events of {DAYS} days, one run, {machine()}")


if __name__ == "__main__":
    main()
