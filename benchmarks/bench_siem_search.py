"""SIEM search latency over a month of events, through Vigil's search service and as hand-written DuckDB SQL.

A store of 10,000,000 events over 30 days (October 2026) is built once in the benchmark cache folder
(``/tmp/vigil-bench/search-<N>/``; about 2 GB): the events are generated inside DuckDB (the same shape
as ``_siem_data.event``) and go in through the very statement ``append_json`` runs, so the typed
columns and the document are what the store writes. Then, each timed as the median of several runs:

- a field-equality query over one day (``user.name:user42``, with the total), as ``vigil.siem.search``
  answers the search page, and as the SQL a person would write (the page of newest events and a count);
- the top 10 values of ``user.name`` over one day;
- a free-text word over the whole month (with the total).

The hand-written SQL returns what the service returns: the newest 100 matching events (documents
included) and the total; the bare ``count(*)`` is printed too, for scale.

Each pair runs on the same store and connection; the ratio and Vigil's overhead are printed too.
Usage: ``bench_siem_search.py [--events N] [--runs N] [--rebuild] [--memory-limit 256MB]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import machine, report
from _siem_data import CACHE

from vigil.siem import search
from vigil.siem.store import duckdb as store_module
from vigil.siem.store.duckdb import DuckDBEventStore

MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 30
CHUNK = 8 * 122_880  # whole DuckDB row groups per transaction, as the pipeline's store leaves them

# One generated document per row ``n`` of ``range``: like ``_siem_data.event`` (5 kinds of event).
_BASE = """'@timestamp', strftime(TIMESTAMP '2026-10-01' + to_microseconds(n * {step}), '%Y-%m-%dT%H:%M:%S.%gZ'),
 'event', json_object('dataset', 'system.' || action, 'category', json_array(category), 'action', action,
                      'outcome', outcome),
 'host', json_object('hostname', 'srv' || lpad((n * 13 % 211)::VARCHAR, 3, '0') || '.corp'),
 'source', json_object('ip', src, 'port', 1024 + n * 31 % 60000),
 'destination', json_object('ip', '192.0.2.' || (n % 37), 'port', [22, 443, 53, 80][n % 4 + 1]),
 'user', json_object('name', usr),
 'network', json_object('transport', CASE WHEN n % 4 = 0 THEN 'udp' ELSE 'tcp' END),
 'message', action || ' ' || outcome || ' for ' || usr || ' from ' || src"""
_PROCESS = "'process', json_object('name', process, 'pid', 1000 + n % 30000{extra})"
GENERATE = """SELECT CASE k
  WHEN 1 THEN json_object({base}, {process_cmd})
  WHEN 3 THEN json_object({base}, {process}, 'dns', json_object('question', json_object('name', domain)))
  WHEN 4 THEN json_object({base}, {process},
                          'url', json_object('original', 'https://' || domain || '/items/' || (n % 1000)))
  ELSE json_object({base}, {process}) END::VARCHAR AS doc
FROM (SELECT n, k, ['ssh_login', 'process_started', 'connection', 'dns_query', 'http_request'][k + 1] AS action,
             [['authentication'], ['process'], ['network'], ['network'], ['web']][k + 1][1] AS category,
             ['success', 'failure', 'unknown'][n % 3 + 1] AS outcome, 'user' || (n * 7 % 503) AS usr,
             '10.' || (n % 7) || '.' || (n * 3 % 251) || '.' || (n % 199) AS src,
             ['sshd', 'bash', 'nginx', 'curl', 'python3', 'systemd', 'cron'][n % 7 + 1] AS process,
             'app' || (n % 17) || '.example.com' AS domain
      FROM (SELECT range AS n, range % 5 AS k FROM range({first}, {last})))"""


def generate_sql(first: int, last: int, total: int) -> str:
    step = DAYS * 86_400_000_000 // total  # microseconds between events
    base = _BASE.format(step=step)
    return GENERATE.format(base=base, first=first, last=last,
                           process=_PROCESS.format(extra=""),
                           process_cmd=_PROCESS.format(extra=", 'command_line', '/usr/bin/' || process || ' -c job' || "
                                                             "(n % 97)"))


def build(folder: Path, total: int) -> Path:
    """The store of ``total`` generated events (built once; ``done`` marks a finished build)."""
    path = folder / "events.duckdb"
    if (folder / "done").exists():
        return path
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    store = DuckDBEventStore(path)
    try:
        # The statement append_json runs, reading generated documents instead of its staging table.
        started = time.perf_counter()
        for first in range(0, total, CHUNK):
            last = min(first + CHUNK, total)
            move = store_module.MOVE_JSON.replace("FROM staging_json", f"FROM ({generate_sql(first, last, total)})")
            db = store._db
            db.begin()
            db.execute(move, ["bench", 1, MONTH_START]).fetchall()
            db.commit()
            print(f"   built {last:,} of {total:,} events ({time.perf_counter() - started:.0f} s)", flush=True)
        store._db.execute("CHECKPOINT").fetchall()
    finally:
        store.close()
    (folder / "done").write_text(f"{total}\n", encoding="utf-8")
    return path


def median_ms(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    run()  # warm: the first run reads the blocks from disk
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


PAGE = ("SELECT id, ts, source, unit_id, ingested, doc FROM events WHERE {where} AND ts >= ? AND ts < ? "
        "ORDER BY ts DESC, id DESC LIMIT 100")
COUNT = "SELECT count(*) FROM events WHERE {where} AND ts >= ? AND ts < ?"
TOP = ("SELECT user_name, count(*) AS n FROM events WHERE ts >= ? AND ts < ? AND user_name IS NOT NULL "
       "GROUP BY user_name ORDER BY n DESC, user_name LIMIT 10")


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__)
    options.add_argument("--events", type=int, default=10_000_000)
    options.add_argument("--runs", type=int, default=7)
    options.add_argument("--rebuild", action="store_true")
    options.add_argument("--memory-limit", help="DuckDB's memory_limit for the store, e.g. 256MB")
    args = options.parse_args()
    folder = CACHE / f"search-{args.events}"
    if args.rebuild:
        shutil.rmtree(folder, ignore_errors=True)
    path = build(folder, args.events)
    store = DuckDBEventStore(path, memory_limit=args.memory_limit) if args.memory_limit else DuckDBEventStore(path)
    db = store._db.cursor()
    db.execute("SET TimeZone = 'UTC'")
    day = search.TimeRange(MONTH_START + timedelta(days=14), MONTH_START + timedelta(days=15))
    month = search.TimeRange(MONTH_START, MONTH_START + timedelta(days=DAYS))
    limit = f", DuckDB memory_limit {args.memory_limit}" if args.memory_limit else ""
    conditions = f"{store.count():,} events over {DAYS} days{limit}, median of {args.runs}, {machine()}"

    def hand_search(where: str, value: str, window: search.TimeRange) -> tuple[int, int]:
        rows = db.execute(PAGE.format(where=where), [value, window.start, window.end]).fetchall()
        total = db.execute(COUNT.format(where=where), [value, window.start, window.end]).fetchall()[0][0]
        return len(rows), int(total)

    def hand_count(where: str, value: str, window: search.TimeRange) -> int:
        return int(db.execute(COUNT.format(where=where), [value, window.start, window.end]).fetchall()[0][0])

    cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        ("field equality user.name:user42 over a day, with total",
         lambda: _found(search.search(store, units=None, query="user.name:user42", window=day)),
         lambda: hand_search("user_name = ?", "user42", day)),
        ("top 10 user.name over a day",
         lambda: [(t.value, t.count) for t in search.top_values(store, units=None, query="", window=day,
                                                                 field="user.name", limit=10)],
         lambda: [tuple(r) for r in db.execute(TOP, [day.start, day.end]).fetchall()]),
        ("free text user77 over the month, with total",
         lambda: _found(search.search(store, units=None, query="user77", window=month)),
         lambda: hand_search("message ILIKE ?", "%user77%", month)),
    ]
    try:
        # The bare count a person would type first, for scale (the figures of issue 3: about 2 and 180 ms).
        counts = (("field equality user.name:user42 over a day", "user_name = ?", "user42", day),
                  ("free text user77 over the month", "message ILIKE ?", "%user77%", month))
        for name, where, value, window in counts:
            count_ms, _ = median_ms(lambda w=where, v=value, r=window: hand_count(w, v, r), args.runs)
            report(f"siem search, {name}, hand-written SQL count only", count_ms, "ms", conditions)
        for name, vigil, hand in cases:
            vigil_ms, vigil_result = median_ms(vigil, args.runs)
            hand_ms, hand_result = median_ms(hand, args.runs)
            same = "same result" if vigil_result == hand_result else f"results differ: {vigil_result} vs {hand_result}"
            report(f"siem search, {name}, Vigil", vigil_ms, "ms", f"{conditions}, {same}")
            report(f"siem search, {name}, hand-written SQL", hand_ms, "ms", conditions)
            report(f"siem search, {name}, Vigil / SQL", vigil_ms / hand_ms, "x",
                   f"Vigil overhead {vigil_ms - hand_ms:+.1f} ms; goal: within 2x plus 20 ms")
    finally:
        db.close()
        store.close()


def _found(result: search.SearchResult) -> tuple[int, int]:
    return len(result.events), result.total


if __name__ == "__main__":
    main()
