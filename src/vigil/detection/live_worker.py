"""Live detection inside the SIEM's parse worker processes: the engine runs where the events are parsed.

The pipeline's thread would otherwise parse-decode every document again and match it alone, while the
workers sit idle; here each worker matches the events it has just parsed and sends back only the
matches. ``WorkerMatch`` is the picklable job: the rule set's version and the file the pipeline's
process wrote it to; a worker builds its engine once per version.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.detection.sigma import Engine, Rule
from vigil.siem.normalize import FAILURE_KIND
from vigil.siem.parsers.base import Event

# (version, engine, position of each rule id in the version's list) of this worker process.
_current: tuple[str, Engine, dict[str, int]] | None = None


@dataclass(frozen=True)
class WorkerMatch:
    version: str
    rules_file: str

    def __call__(self, events: Sequence[Event]) -> list[tuple[int, Any]]:
        """(event index, (version, positions of the matching rules)) for the events that match."""
        engine, positions = _engine_for(self)
        found: list[tuple[int, Any]] = []
        for index, event in enumerate(events):
            if not detectable(event):
                continue
            rules = engine.match(event)
            if rules:
                found.append((index, (self.version, tuple(positions[rule.id] for rule in rules))))
        return found


def detectable(event: Event) -> bool:
    """Whether the event is one of the monitored systems' (not a record no parser could read)."""
    meta = event.get("event")
    return not (isinstance(meta, dict) and meta.get("kind") == FAILURE_KIND)


def _engine_for(job: WorkerMatch) -> tuple[Engine, dict[str, int]]:
    global _current
    if _current is None or _current[0] != job.version:
        with Path(job.rules_file).open("rb") as handle:
            rules: list[Rule] = pickle.load(handle)  # noqa: S301 - written by this server's own process
        _current = (job.version, Engine(rules), {rule.id: position for position, rule in enumerate(rules)})
    return _current[1], _current[2]


def write_rules(folder: Path, version: str, rules: Sequence[Rule]) -> Path:
    """The rule set for the workers, written once per version (older files removed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"live-rules-{version}.pickle"
    if not path.exists():
        partial = path.with_suffix(".tmp")
        with partial.open("wb") as handle:
            pickle.dump(list(rules), handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)
    for old in folder.glob("live-rules-*.pickle"):
        if old != path:
            old.unlink(missing_ok=True)
    return path
