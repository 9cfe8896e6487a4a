"""Every record of an ``.evtx`` file as the event dict the Sigma engine sees.

The same path as hunts and live ingestion: ``iter_evtx_records`` yields each record's JSON and
``WindowsJsonParser`` flattens it (native fields such as ``Channel``, ``EventID``, ``Image`` at the top
level, ECS fields beside them). A record that cannot be read or parsed fails the caller loudly: the
suites compare match counts, and a silently dropped record would read as a missed detection.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from vigil.siem.parsers.base import ParseContext, ParseFailure
from vigil.siem.parsers.evtx import iter_evtx_records
from vigil.siem.parsers.windows import WindowsJsonParser

Event = dict[str, Any]


class UnreadableRecord(Exception):
    """A record of a test file that the project's reader or parser refused."""


@cache
def evtx_events(path: Path) -> tuple[Event, ...]:
    """The file's events in record order; cached per path (both suites and their fixtures reuse them).

    Callers must not mutate the events: they are shared between tests.
    """
    parser = WindowsJsonParser()
    ctx = ParseContext(source=str(path))
    events: list[Event] = []
    for raw in iter_evtx_records(path):
        if isinstance(raw, ParseFailure):
            raise UnreadableRecord(f"{path}: {raw.reason}")
        try:
            events.append(parser.parse_one(raw, ctx))
        except Exception as exc:  # any parser refusal is a broken test input, named with its file
            raise UnreadableRecord(f"{path}: {exc}") from exc
    return tuple(events)
