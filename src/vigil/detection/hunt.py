"""Hunts: Sigma rules over log files, with no server running (``vigil hunt``), one worker process per core.

The parent loads the rules (from the compiled cache) and builds the engine once. Workers are forked from
it and inherit the engine; where processes can only be spawned, each worker loads the same cache itself.
No engine is ever pickled. Files are grouped into tasks of about ``TASK_BYTES``, in the order given; the
biggest tasks are handed out first (no worker is left alone with a big file at the end) and results are
put back in file order, so the output does not depend on the number of workers. A worker sends back only
what matched (file, rule position, event) and what it could not read.

A match is written as a record (``Match.record``): ``@timestamp``, ``rule`` (id, title, level, author and
references: the Detection Rule License asks for attribution), ``file`` and, when the event has them,
``Channel``, ``EventID``, ``EventRecordID`` and ``Computer``, then the matched ``event`` itself.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.core.errors import VigilError
from vigil.detection.hunt_files import Event, Problem, read_events
from vigil.detection.sigma import LEVELS, Engine, Rule, RuleError, load_cached, load_rules

# About this many bytes of input per task: small enough to balance two to a few dozen workers, big
# enough that a task's round trip is noise next to its work.
TASK_BYTES = 4 * 1024 * 1024
# Events handed to the engine at once.
BATCH = 1000
# The fields a match record carries at the top level when the event has them (Windows events do).
WINDOWS_FIELDS = ("Channel", "EventID", "EventRecordID", "Computer")
TIME_FIELDS = ("TimeCreated_SystemTime", "@timestamp", "timestamp")

Found = tuple[str, int, Event]  # file, position of the rule in the rule list, matched event
TaskResult = tuple[int, int, list[Found | Problem]]  # task number, events read, findings in file order


class HuntFailed(VigilError):
    """The hunt could not finish (a worker process died)."""


def default_cache_dir() -> Path:
    """Where compiled rules are kept between hunts: ``$XDG_CACHE_HOME/vigil/rules`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vigil" / "rules"


@dataclass(frozen=True)
class HuntRules:
    rules: list[Rule]  # those at the minimum level or above, in load order
    errors: list[RuleError]  # rules that did not load
    loaded: int  # rules loaded, at any level


@dataclass(frozen=True)
class RuleSource:
    """Which rules a hunt uses: enough for a worker process to load the very same list itself."""

    paths: tuple[str, ...]
    cache_dir: Path | None  # None: no cache (compile from the YAML)
    min_level: str = LEVELS[0]

    def load(self) -> HuntRules:
        loaded = (load_rules(self.paths) if self.cache_dir is None
                  else load_cached(self.paths, cache_dir=self.cache_dir))
        lowest = LEVELS.index(self.min_level)
        return HuntRules([rule for rule in loaded.rules if rule.level_rank >= lowest], list(loaded.errors),
                         len(loaded.rules))


@dataclass(frozen=True, slots=True)
class Match:
    rule: Rule
    event: Event
    file: str

    @property
    def timestamp(self) -> Any:
        for name in TIME_FIELDS:
            value = self.event.get(name)
            if value is not None:
                return value
        return None

    def record(self) -> dict[str, Any]:
        """The JSON record of this match (``--output jsonl``)."""
        rule = self.rule
        record: dict[str, Any] = {
            "@timestamp": self.timestamp,
            "rule": {"id": rule.id, "title": rule.title, "level": rule.level, "author": rule.author,
                     "references": list(rule.references), "tags": list(rule.tags)},
            "file": self.file,
        }
        record.update({name: self.event[name] for name in WINDOWS_FIELDS if name in self.event})
        record["event"] = self.event
        return record


    def row(self) -> list[str]:
        """The CSV row of this match, under ``CSV_COLUMNS``."""
        rule, event = self.rule, self.event
        windows = [_text(event.get(name)) for name in WINDOWS_FIELDS]
        return [_text(self.timestamp), rule.id, rule.title, rule.level, rule.author, " ".join(rule.references),
                self.file, *windows]


CSV_COLUMNS = ("@timestamp", "rule.id", "rule.title", "rule.level", "rule.author", "rule.references", "file",
               *WINDOWS_FIELDS)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@dataclass
class HuntStats:
    files: int = 0
    events: int = 0
    matches: int = 0
    problems: int = 0
    rules: int = 0
    rule_errors: int = 0
    by_level: dict[str, int] = field(default_factory=dict)


def hunt(
    files: Sequence[Path], rules: Sequence[Rule], source: RuleSource, *, workers: int, stats: HuntStats
) -> Iterator[Match | Problem]:
    """Matches and read problems of every file, in file order; ``stats`` is filled in as they come.

    ``rules`` is what ``source.load()`` gave (spawned workers load it again from ``source``).
    """
    stats.files, stats.rules = len(files), len(rules)
    tasks = _tasks(files)
    workers = max(1, min(workers, len(tasks)))
    if workers == 1:
        _use(rules)
        results: Iterator[TaskResult] = (_run_task((number, paths, 0)) for number, paths in enumerate(tasks))
        yield from _emit(results, rules, stats)
        return
    yield from _in_workers(tasks, rules, source, workers, stats)


def _in_workers(
    tasks: list[tuple[str, ...]], rules: Sequence[Rule], source: RuleSource, workers: int, stats: HuntStats
) -> Iterator[Match | Problem]:
    forking = "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
    if forking:
        _use(rules)
        gc.freeze()  # the inherited engine is not walked by the children's collector: its pages stay shared
    context = multiprocessing.get_context("fork" if forking else "spawn")
    initargs = (None, ()) if forking else (source, tuple(rule.id for rule in rules))
    sizes = [sum(_size(path) for path in paths) for paths in tasks]
    order = sorted(range(len(tasks)), key=lambda number: -sizes[number])  # biggest first
    # A process pool that notices a dead worker (a crash in the native EVTX reader) instead of waiting on it.
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs)
    finished = False
    try:
        futures = [pool.submit(_run_task, (number, tasks[number], 1)) for number in order]
        yield from _emit(_in_order(future.result() for future in as_completed(futures)), rules, stats)
        finished = True
    except BrokenProcessPool as exc:
        raise HuntFailed(f"a hunt worker process died ({exc}); try --workers 1 to find the file") from None
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)
        if forking:
            gc.unfreeze()


def _in_order(results: Iterator[TaskResult]) -> Iterator[TaskResult]:
    """Task results by task number, holding back those that finish before an earlier one."""
    waiting: dict[int, TaskResult] = {}
    following = 0
    for result in results:
        waiting[result[0]] = result
        while following in waiting:
            yield waiting.pop(following)
            following += 1


def _emit(results: Iterator[TaskResult], rules: Sequence[Rule], stats: HuntStats) -> Iterator[Match | Problem]:
    for _, events, findings in results:
        stats.events += events
        for finding in findings:
            if isinstance(finding, Problem):
                stats.problems += 1
                yield finding
                continue
            path, position, event = finding
            rule = rules[position]
            stats.matches += 1
            stats.by_level[rule.level] = stats.by_level.get(rule.level, 0) + 1
            yield Match(rule, event, path)


def _tasks(files: Sequence[Path]) -> list[tuple[str, ...]]:
    """Consecutive files grouped into tasks of about ``TASK_BYTES`` (a bigger file is a task alone)."""
    tasks: list[tuple[str, ...]] = []
    current: list[str] = []
    size = 0
    for file in files:
        current.append(str(file))
        size += _size(str(file))
        if size >= TASK_BYTES:
            tasks.append(tuple(current))
            current, size = [], 0
    if current:
        tasks.append(tuple(current))
    return tasks


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0  # reported when the task reads it


# --- in the worker ---------------------------------------------------------------------------------

_engine: Engine | None = None
_positions: dict[int, int] = {}  # id(rule) -> its position in the rule list


def _use(rules: Sequence[Rule]) -> None:
    global _engine, _positions
    _engine = Engine(rules)
    _positions = {id(rule): position for position, rule in enumerate(rules)}


def _start_worker(source: RuleSource | None, rule_ids: tuple[str, ...]) -> None:
    """A spawned worker loads the rules itself (a forked one has them already)."""
    if _engine is not None or source is None:
        return
    rules = source.load().rules
    if tuple(rule.id for rule in rules) != rule_ids:
        raise RuntimeError("the rules changed on disk while the hunt started; run it again")
    _use(rules)


def _run_task(task: tuple[int, tuple[str, ...], int]) -> TaskResult:
    """Read a task's files and match their events; ``threads`` 0 lets the EVTX reader use every core."""
    number, paths, threads = task
    engine = _engine
    if engine is None:
        raise RuntimeError("hunt worker started without rules")
    findings: list[Found | Problem] = []
    events = 0
    for path in paths:
        batch: list[Event] = []
        for item in read_events(path, threads=threads):
            if type(item) is dict:
                batch.append(item)
                if len(batch) >= BATCH:
                    _match(engine, path, batch, findings)
                    events += len(batch)
                    batch = []
            else:
                findings.append(item)  # type: ignore[arg-type]  # a Problem
        _match(engine, path, batch, findings)
        events += len(batch)
    return number, events, findings


def _match(engine: Engine, path: str, batch: list[Event], findings: list[Found | Problem]) -> None:
    if not batch:
        return
    positions = _positions
    for event, matched in zip(batch, engine.match_many(batch), strict=True):
        for rule in matched:
            findings.append((path, positions[id(rule)], event))
