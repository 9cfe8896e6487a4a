"""Live IOC matching's cost to ingestion: the ingest of ``bench_siem_ingest.py``'s events with no indicator and
with 1,000,000 indicators loaded, side by side.

The same generated events go through spool → pipeline → DuckDB in both runs, with the records store
(SQLite) and the ``vigil.consumers`` plugins as `vigil serve` has them; in the second run the indicator
store holds 1,000,000 indicators (IPv4 addresses, domains, SHA-256 hashes, URLs), so every event is
matched; none of them is a value the events carry (what hits cost is recording sightings and alerts,
measured by the tests, not here). Printed: events/s of both runs, by wall clock and by CPU time (server
and parse workers), and the cost of matching as a share of the ingest (goal: at most 10%).

Four pairs, by where the events are parsed and matched:
- CEF lines (the events as a firewall would send them): parsed in the parse workers, which match them
  there, as `vigil serve` does with any source but plain JSON;
- the JSON events parsed and enriched in the pipeline's own thread, which matches them there (an enricher
  keeps the events in that process, as `vigil ingest` of files does);
- plain JSON with Vigil's starter rules enabled, as `vigil init` leaves a deployment (the workers decode the
  documents for detection; IOC matching screens them as text, ``vigil.intel.screen``);
- plain JSON with no rule enabled, the store's fast path: nothing but the screen reads the documents.

Each pair runs ``--runs`` times, the two sides alternating, and the medians are compared: on a shared machine
the same run swings by 10-30 % from one time to the next. Each side runs for about ten seconds (300,000 CEF or
enriched events, 1,000,000 plain JSON ones, unless ``--events`` says), so that what a run costs once (the
store's first transaction, threads starting) and the machine's swings weigh less against what is measured;
what each alternating pair of runs gave is printed too.

Usage: ``bench_intel_live.py [--events N] [--indicators N] [--batch N] [--runs N] [--pairs cef,enriched,rules,plain]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import orjson
from _common import machine, report, sqlite_database
from _siem_data import ndjson_file

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.detection.rules_import import install_starter_pack
from vigil.intel.indicators import IndicatorType, ParsedIndicator
from vigil.intel.runtime import forget, intel_for
from vigil.siem.parsers.base import Event
from vigil.siem.parsing import SourceConfig
from vigil.siem.pipeline import MAX_RECORDS
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta


def indicators(count: int) -> Iterator[ParsedIndicator]:
    """Values the events never carry, as nearly all traffic meets nearly all indicators."""
    picker = random.Random(11)
    kinds = (IndicatorType.IPV4, IndicatorType.DOMAIN, IndicatorType.SHA256, IndicatorType.URL)
    for n in range(count):
        kind = kinds[n % 4]
        if kind is IndicatorType.IPV4:
            yield ParsedIndicator(kind, f"{picker.randint(11, 223)}.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}")
        elif kind is IndicatorType.DOMAIN:
            yield ParsedIndicator(kind, f"h{n}.bad{n % 977}.net")
        elif kind is IndicatorType.SHA256:
            yield ParsedIndicator(kind, f"{picker.getrandbits(256):064x}")
        else:
            yield ParsedIndicator(kind, f"http://dl{n}.example.org/p/{n}.bin")


class Tagged:
    """An enricher (``observer.name`` on every event): with one, the pipeline parses and matches in its own
    thread."""

    name = "bench-tag"

    def enrich(self, events: list[Event]) -> None:
        for event in events:
            event["observer.name"] = "bench"


def cef_line(document: bytes) -> bytes:
    """One generated event as a CEF line carrying its addresses, ports, user, host names and URL."""
    event = orjson.loads(document)
    stamp = int(datetime.fromisoformat(event["@timestamp"]).timestamp() * 1000)
    action = event["event"]["action"]
    fields = {"rt": stamp, "src": event["source"]["ip"], "spt": event["source"]["port"],
              "dst": event["destination"]["ip"], "dpt": event["destination"]["port"], "suser": event["user"]["name"],
              "shost": event["host"]["hostname"], "proto": event["network"]["transport"].upper()}
    if "dns" in event:
        fields["dhost"] = event["dns"]["question"]["name"]
    if "url" in event:
        fields["request"] = event["url"]["original"]
    extension = " ".join(f"{key}={value}" for key, value in fields.items())
    return f"CEF:0|Vigil|bench|1.0|{action}|{action}|3|{extension} msg={event['message']}".encode()


def ingest(lines: list[bytes], batch: int, folder: Path, database: Database, loaded: int, *,
           form: str, enriched: bool, rules: bool) -> tuple[float, float]:
    if rules:
        install_starter_pack(database)
    settings = Settings(data_dir=folder, spool_quota_bytes=8 * 1024**3, database_url=database.url)
    intel = intel_for(settings, database)
    if loaded:
        intel.store.merge(indicators(loaded), source="bench", replace=True)
    siem = Siem(settings, database, enrichers=[Tagged()] if enriched else ())
    siem.source_configs = lambda name: SourceConfig(format=form)
    meta = BatchMeta(source="http:bench", unit_id=1, format=form, transport="http")
    every = max(MAX_RECORDS // batch, 1)
    for consumer in siem.consumers:
        consumer.wanted()  # indexes built before the clock starts, as in a server that has been running
    siem.pipeline.wait_ready()  # the workers booted and their indexes built, likewise
    workers = worker_pids(siem)
    # The side with indicators has just written them (the indicator store, the workers' snapshot: about 150 MB);
    # written back to disk during the run, they would slow the event store's commits.
    os.sync()
    wall, cpu, workers_cpu = time.perf_counter(), time.process_time(), cpu_seconds(workers)
    try:
        for number, first in enumerate(range(0, len(lines), batch)):
            siem.submit(lines[first:first + batch], meta)
            if number % every == every - 1:
                siem.pipeline.run_once()
        siem.drain(timeout=3600)
        workers_cpu = cpu_seconds(workers) - workers_cpu
        stored = siem.store.count()
    finally:
        siem.stop()
        forget(settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if stored != len(lines):
        raise SystemExit(f"stored {stored:,} events of {len(lines):,}")
    return wall, cpu + workers_cpu


def worker_pids(siem: Siem) -> list[int]:
    """The parse workers, booted (as `vigil serve` starts them before traffic comes)."""
    pool = siem.pipeline._parse_pool()
    if pool is None:
        return []
    workers = Settings().pipeline_workers
    for booted in [pool.submit(os.getpid) for _ in range(4 * workers)]:
        booted.result()
    return list(pool._processes)  # type: ignore[attr-defined]


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time of these processes so far (Linux: /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=None, help="events a run (default: about ten seconds' worth)")
    options.add_argument("--indicators", type=int, default=1_000_000)
    options.add_argument("--batch", type=int, default=10_000)
    options.add_argument("--runs", type=int, default=3, help="runs of each side of a pair, alternating (medians)")
    options.add_argument("--pairs", default="cef,enriched,rules,plain", help="which pairs to run, in this order")
    args = options.parse_args()
    paths = {  # form, enriched, rules, events a run by default, what it is
        "cef": ("cef", False, False, 300_000,
                "CEF lines parsed and matched in the parse workers (any source but plain JSON)"),
        "enriched": ("json", True, False, 300_000,
                     "JSON parsed, enriched, matched in the pipeline's thread (vigil ingest of files)"),
        "rules": ("json", False, True, 1_000_000, "plain JSON with the starter rules detecting (as deployed)"),
        "plain": ("json", False, False, 1_000_000,
                  "plain JSON stored as text, no rule enabled (the store's fast path)"),
    }
    for form, enriched, rules, events, path in (paths[name.strip()] for name in args.pairs.split(",")):
        documents = ndjson_file(args.events or events).read_bytes().splitlines()
        conditions = (f"{len(documents):,} events, batches of {args.batch:,}, {Settings().pipeline_workers} parse "
                      f"workers, median of {args.runs} runs, {machine()}")
        lines = [cef_line(document) for document in documents] if form == "cef" else documents
        runs: dict[int, list[tuple[float, float]]] = {0: [], args.indicators: []}
        for _ in range(args.runs):
            for loaded in runs:
                with tempfile.TemporaryDirectory(prefix="vigil-bench-live-") as folder, sqlite_database() as database:
                    runs[loaded].append(ingest(lines, args.batch, Path(folder), database, loaded, form=form,
                                               enriched=enriched, rules=rules))
        figures = {loaded: (statistics.median(wall for wall, _ in taken), statistics.median(cpu for _, cpu in taken))
                   for loaded, taken in runs.items()}
        for loaded, (wall, cpu) in figures.items():
            report(f"intel live, {path}, {loaded:,} indicators loaded", len(lines) / wall, "events/s",
                   f"CPU {cpu / len(lines) * 1e6:.1f} µs an event (server and workers), {conditions}")
        (none, none_cpu), (loaded_wall, loaded_cpu) = figures[0], figures[args.indicators]
        pairs = list(zip(runs[0], runs[args.indicators], strict=True))
        each_wall = ", ".join(f"{(loaded[0] / alone[0] - 1) * 100:+.1f}" for alone, loaded in pairs)
        each_cpu = ", ".join(f"{(loaded[1] / alone[1] - 1) * 100:+.1f}" for alone, loaded in pairs)
        report(f"intel live, {path}, what matching adds to the wall time", (loaded_wall / none - 1) * 100, "%",
               f"{args.indicators:,} indicators vs none, {conditions}, each pair of runs {each_wall} %, "
               "goal at most 10%")
        report(f"intel live, {path}, what matching adds to the CPU time", (loaded_cpu / none_cpu - 1) * 100, "%",
               f"{args.indicators:,} indicators vs none, server and parse workers, {conditions}, each pair of runs "
               f"{each_cpu} %")


if __name__ == "__main__":
    main()
