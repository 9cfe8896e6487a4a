"""Live detection: Windows events per second through the Sigma engine with every SigmaHQ Windows rule loaded,
and how long after ingestion a match is an alert.

* engine: the EVTX samples (../shared/data/evtx, ~8,255 records), parsed as the SIEM parses them (native
  fields plus ECS), through ``Engine.match`` with all of SigmaHQ ``rules/windows`` (~2,400 rules) on one
  core: first on a fresh engine (every value new to it), then again (values seen before: the memo
  answers), as a long-running pipeline sees them;
* alert latency: a running SIEM (spool, pipeline thread, DuckDB store) with the starter pack enabled
  receives one matching event at a time over its ``submit`` path; the time until its alert is in the
  records store, median and 90th percentile of 50.

Usage: ``.venv/bin/python benchmarks/bench_detection_live.py``; skipped where ../shared/data is absent.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import orjson
from _common import machine, report, skip, sqlite_database

from vigil.core.config import load_settings
from vigil.detection.alerts import alert_count
from vigil.detection.rules_import import install_starter_pack
from vigil.detection.sigma import Engine, load_cached
from vigil.siem.parsers.base import ParseContext
from vigil.siem.parsers.evtx import iter_evtx_records
from vigil.siem.parsers.windows import WindowsJsonParser
from vigil.siem.runtime import Siem
from vigil.siem.spool import BatchMeta

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RULES = SHARED / "sigma" / "rules" / "windows"
EVTX = SHARED / "evtx"


def windows_events() -> list[dict[str, object]]:
    parser, ctx = WindowsJsonParser(), ParseContext()
    events = []
    for path in sorted(EVTX.rglob("*.evtx")):
        for raw in iter_evtx_records(path):
            if isinstance(raw, bytes):
                try:
                    events.append(parser.parse_one(raw, ctx))
                except ValueError:
                    continue
    return events


def engine_throughput() -> None:
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as cache:
        started = time.perf_counter()
        loaded = load_cached([RULES], cache_dir=Path(cache))
        compiled = time.perf_counter() - started
        started = time.perf_counter()
        loaded = load_cached([RULES], cache_dir=Path(cache))
        cached = time.perf_counter() - started
    events = windows_events()
    started = time.perf_counter()
    engine = Engine(loaded.rules)
    built = time.perf_counter() - started
    conditions = (f"{len(loaded.rules):,} SigmaHQ Windows rules, {len(events):,} EVTX sample events, one core; "
                  f"{machine()}")
    report("sigma rules load + compile (no cache)", compiled, "s", conditions)
    report("sigma rules load from the compiled cache", cached, "s", conditions)
    report("sigma engine build (index, automata)", built, "s", conditions)
    for label in ("first pass, fresh engine", "second pass, values seen before"):
        started = time.perf_counter()
        matches = sum(len(found) for found in engine.match_many(events))
        elapsed = time.perf_counter() - started
        report(f"live detection engine, {label}", len(events) / elapsed, "events/s",
               f"{conditions}; {matches:,} matches")


def alert_latency() -> None:
    with sqlite_database() as database, tempfile.TemporaryDirectory(prefix="vigil-bench-") as folder:
        install_starter_pack(database)
        settings = load_settings(data_dir=Path(folder), database_url=database.url, pipeline_workers=0)
        siem = Siem(settings, database)
        siem.start()
        try:
            unit = siem.unit_for("http:edr")
            latencies = []
            for n in range(50):
                event = {"@timestamp": "2026-11-28T10:00:00Z", "Channel": "Microsoft-Windows-Sysmon/Operational",
                         "EventID": 1, "Computer": f"WS{n:03d}", "User": "CORP\\alice",
                         "Image": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                         "CommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoA"}
                before = alert_count(database)
                started = time.perf_counter()
                siem.submit([orjson.dumps(event)], BatchMeta(source="http:edr", unit_id=unit, format="json"))
                while alert_count(database) == before:
                    if time.perf_counter() - started > 30:
                        raise SystemExit("no alert within 30 s")
                    time.sleep(0.002)
                latencies.append(time.perf_counter() - started)
        finally:
            siem.stop()
    conditions = (f"one Sysmon process creation per batch into a running SIEM (fsync'd spool, DuckDB store, "
                  f"SQLite records), starter pack enabled, 50 events; {machine()}")
    report("alert latency after ingestion, median", statistics.median(latencies) * 1000, "ms", conditions)
    report("alert latency after ingestion, 90th percentile",
           statistics.quantiles(latencies, n=10)[-1] * 1000, "ms", conditions)


def main() -> None:
    if not RULES.is_dir() or not EVTX.is_dir():
        skip("live detection engine", f"{SHARED} is absent (SigmaHQ rules and EVTX samples)")
    else:
        engine_throughput()
    alert_latency()


if __name__ == "__main__":
    main()
