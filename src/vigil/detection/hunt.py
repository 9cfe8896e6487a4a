"""Hunts: Sigma rules over log files, with no server running (``vigil hunt``), one worker process per core.

The parent loads the engine once: from its image in the cache (``RuleSource``; the first hunt with a rule
set compiles the rules, builds the engine and keeps its image). Workers are forked from it and inherit
the engine; where processes can only be spawned, each worker loads the same image itself. No engine is
ever sent to a worker. Files are grouped into tasks of about ``TASK_BYTES``, and a bigger .evtx or NDJSON
file is cut into parts of that size (chunk ranges, line ranges), read in parallel. With more than one
worker, files of the same name go together (``Security.evtx`` of each machine: the same channel, so the
same rule buckets and much the same values): the worker that hunts them remembers their values once,
where two workers would each pay the first look at every one. The biggest tasks go first (no worker is
left alone with a big file at the end) and results are put back in file order, so the output does not
depend on the number of workers. A worker sends back only its matches, already in the output format (a
JSON line, a CSV row, table cells), and what it could not read: the parent only writes them.

A match's JSON record (``Match.record``): ``@timestamp``, ``rule`` (id, title, level, author and
references: the Detection Rule License asks for attribution; tags), ``file`` and, when the event has
them, ``Channel``, ``EventID``, ``EventRecordID`` and ``Computer``, then the matched ``event`` itself.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import pickle
import sys
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from vigil.core.errors import VigilError
from vigil.core.memory import collector_paused
from vigil.detection.hunt_files import CHUNK_SIZE, WHOLE, Event, Part, Problem, read_events, split_file
from vigil.detection.sigma import LEVELS, Engine, Rule, RuleError, load_cached, load_rules
from vigil.detection.sigma.load import cache_key, write_atomically
from vigil.detection.sigma.placeholders import Frozen

# Bump when what an engine image holds changes: older images are then made again.
IMAGE_FORMAT = 1
# About this many bytes of input per task: small enough to balance two to a few dozen workers, big
# enough that a task's round trip is noise next to its work.
TASK_BYTES = 4 * 1024 * 1024
# Events handed to the engine at once: few enough that they are still in the CPU's caches when matched,
# just after they were read (1,000 took 7 % more CPU).
BATCH = 32
# The fields a match record carries at the top level when the event has them (Windows events do).
WINDOWS_FIELDS = ("Channel", "EventID", "EventRecordID", "Computer")
TIME_FIELDS = ("TimeCreated_SystemTime", "@timestamp", "timestamp")

CSV_COLUMNS = ("@timestamp", "rule.id", "rule.title", "rule.level", "rule.author", "rule.references", "file",
               *WINDOWS_FIELDS)
TABLE_COLUMNS = ("TIME", "LEVEL", "RULE", "COMPUTER", "CHANNEL/EVENTID", "FILE")


@dataclass(frozen=True, slots=True)
class Hit:
    """A match as the output format has it: a JSON line (jsonl), or the cells of its row (csv, table)."""

    level: str
    line: bytes = b""
    cells: tuple[str, ...] = ()
    attribution: tuple[str, str, str] = ("", "", "")  # table: the rule's title, id and author


Piece = tuple[int, int]  # a file's number (in the order given) and the number of its part (0: the whole file)
Task = tuple[tuple[Piece, str, Part], ...]  # files, or a part of one file
PieceResult = tuple[Piece, int, list[Hit | Problem]]  # events read, findings in the piece's order


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
    engine: Engine  # built for ``rules``


@dataclass(frozen=True)
class RuleSource:
    """Which rules a hunt uses: enough for a worker process to load the very same list itself."""

    paths: tuple[str, ...]
    cache_dir: Path | None  # None: no cache (compile from the YAML)
    min_level: str = LEVELS[0]
    placeholders: Frozen = ()  # values of Sigma placeholders, ((name, (value, ...)), ...)

    def load(self) -> HuntRules:
        """The rules and their engine: from the engine image in the cache when the rule files are unchanged
        (loading an image takes a fraction of the time that loading the rules and building takes)."""
        image_file = None
        if self.cache_dir is not None:
            key = cache_key(self.paths, placeholders=dict(self.placeholders))
            image_file = self.cache_dir / f"engine-{key}-{self.min_level}-{IMAGE_FORMAT}.pickle"
            found = _read_image(image_file)
            if found is not None:
                return found
        values = dict(self.placeholders)
        loaded = (load_rules(self.paths, placeholders=values) if self.cache_dir is None
                  else load_cached(self.paths, cache_dir=self.cache_dir, placeholders=values))
        lowest = LEVELS.index(self.min_level)
        rules = [rule for rule in loaded.rules if rule.level_rank >= lowest]
        engine = Engine(rules, code_cache=self.cache_dir)
        if image_file is not None:
            write_atomically(image_file, pickle.dumps((list(loaded.errors), len(loaded.rules), engine.image()),
                                                      protocol=pickle.HIGHEST_PROTOCOL))
        return HuntRules(rules, list(loaded.errors), len(loaded.rules), engine)


def _read_image(path: Path) -> HuntRules | None:
    """The rules and engine kept in an image file; None when there is none usable (then it is made again)."""
    try:
        with collector_paused():  # a quarter of a million objects, none of them garbage
            errors, loaded, image = pickle.loads(path.read_bytes())  # noqa: S301 - our cache, the user's folder
            engine = Engine.from_image(image)
            # Out of the collector's generations (as ``hunt`` does with all it has): else its next run, as
            # soon as it is on again, walks every one of them once (30 ms).
            gc.freeze()
    except (OSError, ValueError, TypeError, EOFError, AttributeError, ImportError, pickle.UnpicklingError):
        return None
    return HuntRules(engine.rules, errors, loaded, engine)


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

    def row(self) -> tuple[str, ...]:
        """The CSV row of this match, under ``CSV_COLUMNS``."""
        rule, event = self.rule, self.event
        windows = (_text(event.get(name)) for name in WINDOWS_FIELDS)
        return (_text(self.timestamp), rule.id, rule.title, rule.level, rule.author, " ".join(rule.references),
                self.file, *windows)

    def cells(self) -> tuple[str, ...]:
        """The table row of this match, under ``TABLE_COLUMNS`` (time to the second)."""
        stamp, event = self.timestamp, self.event
        shown = stamp[:19].replace("T", " ") if isinstance(stamp, str) else _text(stamp) or "-"
        channel, event_id = event.get("Channel"), event.get("EventID")
        where = "-" if channel is None and event_id is None else f"{channel or '-'}/{_text(event_id) or '-'}"
        return (shown, self.rule.level, self.rule.title, _text(event.get("Computer")) or "-", where, self.file)

    def hit(self, output: str) -> Hit:
        """This match as ``output`` (``jsonl``, ``csv`` or ``table``) writes it."""
        if output == "jsonl":
            return Hit(self.rule.level, line=orjson.dumps(
                self.record(), option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS, default=str))
        if output == "csv":
            return Hit(self.rule.level, cells=self.row())
        return Hit(self.rule.level, cells=self.cells(), attribution=(self.rule.title, self.rule.id, self.rule.author))


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
    files: Sequence[Path], rules: HuntRules, source: RuleSource, *, output: str, workers: int,
    stats: HuntStats,
) -> Iterator[Hit | Problem]:
    """Matches (rendered for ``output``) and read problems of every file, in file order.

    ``rules`` is what ``source.load()`` gave (spawned workers load it again from ``source``); ``stats`` is
    filled in as results come.
    """
    stats.files, stats.rules = len(files), len(rules.rules)
    tasks, sizes, pieces = _tasks(files, by_name=workers > 1)
    workers = max(1, min(workers, len(tasks)))
    forking = workers > 1 and "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"
    if workers == 1 or forking:
        _use(rules.engine)  # spawned workers load their own
    # What is in memory now (the engine; the imports of the whole `vigil` command) lives to the end: the
    # collector need not walk it again and again while events come and go (nor copy its pages, once forked).
    gc.freeze()
    try:
        if workers == 1:
            results = (result for task in tasks for result in _run_task((task, 0, output)))
            yield from _emit(_in_order(results, pieces), stats)
        else:
            yield from _in_workers(tasks, sizes, pieces, source, output, workers, forking, stats)
    finally:
        gc.unfreeze()


def _in_workers(
    tasks: list[Task], sizes: list[int], pieces: list[int], source: RuleSource, output: str, workers: int,
    forking: bool, stats: HuntStats,
) -> Iterator[Hit | Problem]:
    context = multiprocessing.get_context("fork" if forking else "spawn")
    initargs = () if forking else (source,)
    order = sorted(range(len(tasks)), key=lambda number: -sizes[number])  # biggest first
    # A process pool that notices a dead worker (a crash in the native EVTX reader) instead of waiting on it.
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=initargs)
    finished = False
    try:
        futures = [pool.submit(_run_task, (tasks[number], 1, output)) for number in order]
        results = (result for future in as_completed(futures) for result in future.result())
        yield from _emit(_in_order(results, pieces), stats)
        finished = True
    except BrokenProcessPool as exc:
        raise HuntFailed(f"a hunt worker process died ({exc}); try --workers 1 to find the file") from None
    finally:
        pool.shutdown(wait=finished, cancel_futures=True)


def _in_order(results: Iterator[PieceResult], pieces: list[int]) -> Iterator[PieceResult]:
    """The results of every piece in file order (``pieces``: how many each file is read in), holding back
    those that come before an earlier one."""
    waiting: dict[Piece, PieceResult] = {}
    following: Piece = (0, 0)
    for result in results:
        waiting[result[0]] = result
        while following in waiting:
            yield waiting.pop(following)
            file, part = following
            following = (file, part + 1) if part + 1 < pieces[file] else (file + 1, 0)


def _emit(results: Iterator[PieceResult], stats: HuntStats) -> Iterator[Hit | Problem]:
    for _, events, findings in results:
        stats.events += events
        for finding in findings:
            if isinstance(finding, Problem):
                stats.problems += 1
            else:
                stats.matches += 1
                stats.by_level[finding.level] = stats.by_level.get(finding.level, 0) + 1
            yield finding


def _tasks(files: Sequence[Path], *, by_name: bool) -> tuple[list[Task], list[int], list[int]]:
    """Files grouped into tasks of about ``TASK_BYTES``, the tasks' sizes in bytes, and how many pieces
    each file is read in.

    Files follow one another in the order given, or with ``by_name`` those of the same name (whatever
    its case) together, in the order their names first come. A bigger .evtx or NDJSON file is cut into
    parts of that size, each a task of its own.
    """
    paths = [str(file) for file in files]
    order: Iterable[int] = range(len(paths))
    if by_name:
        names: dict[str, list[int]] = {}
        for number, file in enumerate(files):
            names.setdefault(file.name.casefold(), []).append(number)
        order = [number for same in names.values() for number in same]
    tasks: list[Task] = []
    sizes: list[int] = []
    pieces = [1] * len(paths)
    current: list[tuple[Piece, str, Part]] = []
    size = 0
    for number in order:
        path = paths[number]
        file_size = _size(path)
        parts = split_file(path, file_size, TASK_BYTES)
        if len(parts) > 1:
            if current:
                tasks.append(tuple(current))
                sizes.append(size)
                current, size = [], 0
            tasks.extend((((number, piece), path, part),) for piece, part in enumerate(parts))
            sizes.extend(b * CHUNK_SIZE if kind == "chunks" else b - a for kind, a, b, _ in parts)
            pieces[number] = len(parts)
            continue
        current.append(((number, 0), path, WHOLE))
        size += file_size
        if size >= TASK_BYTES:
            tasks.append(tuple(current))
            sizes.append(size)
            current, size = [], 0
    if current:
        tasks.append(tuple(current))
        sizes.append(size)
    return tasks, sizes, pieces


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size  # noqa: PTH116 - no Path made for each of thousands of files
    except OSError:
        return 0  # reported when the task reads it


# --- in the worker ---------------------------------------------------------------------------------

_engine: Engine | None = None


def _use(engine: Engine) -> None:
    global _engine
    _engine = engine


def _start_worker(source: RuleSource | None = None) -> None:
    """A spawned worker loads the rules itself (a forked one has them already)."""
    if _engine is None and source is not None:
        _use(source.load().engine)


def _run_task(task: tuple[Task, int, str]) -> list[PieceResult]:
    """Read a task's files and match their events; ``threads`` 0 lets the EVTX reader use every core."""
    files, threads, output = task
    engine = _engine
    if engine is None:
        raise RuntimeError("hunt worker started without rules")
    results: list[PieceResult] = []
    for piece, path, part in files:
        findings: list[Hit | Problem] = []
        events = 0
        batch: list[Event] = []
        for item in read_events(path, threads=threads, part=part):
            if type(item) is dict:
                batch.append(item)
                if len(batch) >= BATCH:
                    _match(engine, path, batch, output, findings)
                    events += len(batch)
                    batch = []
            else:
                findings.append(item)  # type: ignore[arg-type]  # a Problem
        _match(engine, path, batch, output, findings)
        events += len(batch)
        results.append((piece, events, findings))
    return results


def _match(engine: Engine, path: str, batch: list[Event], output: str, findings: list[Hit | Problem]) -> None:
    if not batch:
        return
    for event, matched in zip(batch, engine.match_many(batch), strict=True):
        for rule in matched:
            findings.append(Match(rule, event, path).hit(output))
