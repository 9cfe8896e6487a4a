"""After parsing, before storing: every event gets where it came from, failures become events, enrichers run.

Enrichment is a hook that later parts fill (assets: owner, business line, criticality by IP or host
name): an ``Enricher`` receives a whole batch and adds fields in place. An enricher that raises is
logged and skipped for that batch; the events are stored without its fields rather than lost.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Sequence
from datetime import UTC
from typing import Any, Protocol, runtime_checkable

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.siem.parsers.base import Event, ParseFailure, decode_text, get, put
from vigil.siem.spool import BatchMeta

log = logging.getLogger(__name__)

# Failure records are events too: searchable (event.kind:pipeline_error), counted per source.
FAILURE_KIND = "pipeline_error"


class Enricher(Protocol):
    name: str

    def enrich(self, events: list[Event]) -> None:
        """Add context fields to the events of one batch, in place."""
        ...


class EventConsumer(Protocol):
    """Sees the events of each batch just before they are stored: threat detection, IOC matching.

    Called in the pipeline's thread, before the store's commit, so that a crash in between replays the
    batch to it (at least once; consumers deduplicate). It must not raise for bad events; if it does,
    the pipeline logs it and stores the batch anyway (ingestion never waits on detection)."""

    name: str

    def wanted(self) -> bool:
        """Whether it has anything to do now (no enabled rule: no), so that JSON batches are not decoded
        into events for nobody."""
        ...

    def consume(self, events: Sequence[Event], *, source: str, unit_id: int) -> None:
        ...

    def worker_job(self) -> WorkerJob | None:
        """What to run on a batch's events in the parse worker processes, beside the parsing (None: nothing;
        the consumer then gets the events in the pipeline's thread)."""
        ...

    def consume_found(self, found: Sequence[tuple[int, Any]], documents: Sequence[str | bytes], *, source: str,
                      unit_id: int) -> None:
        """What its worker job found: (index into ``documents``, the job's finding) pairs, in order."""
        ...

    # Optional (the pipeline looks for them): JSON documents the store takes as they are, not decoded.
    #
    # def document_screen(self) -> Callable[[Sequence[bytes], int], Any] | None:
    #     """A thread-safe function the pipeline may run ahead, in threads of its own, on each batch of such
    #     documents with the position of its first document (no worker job is then sent with them); None:
    #     none now."""
    #
    # def consume_documents(self, documents: Sequence[str | bytes], screened: Sequence[Any] | None, *,
    #                       source: str, unit_id: int) -> bool:
    #     """Take them, with what the screen gave for each batch of them (None: it did not run), and say so
    #     (True); False leaves them to be decoded and handed to ``consume``."""


# Run in a parse worker on a batch's events: a picklable callable, (index, finding) for the events it is
# about (detection: the events that match and their rules). A job may also have a ``prepare()`` method (no
# arguments, returning the worker's pid, which tells the pipeline which workers have run it): the pipeline
# then runs it in every worker before the job's first batch, sending batches with the job before it
# meanwhile (IOC matching builds its indicator index there).
WorkerJob = Callable[[Sequence[Event]], list[tuple[int, Any]]]


@runtime_checkable
class ConsumerFactory(Protocol):
    """A ``vigil.consumers`` entry point: makes the consumer for a SIEM (threat detection registers one)."""

    def __call__(self, settings: Settings, database: Database) -> EventConsumer:
        ...


def failure_event(failure: ParseFailure, meta: BatchMeta) -> Event:
    """A record no parser could read: the raw bytes (losslessly), the parser and the reason."""
    text, valid = decode_text(failure.raw)
    event: Event = {
        "@timestamp": meta.received_at.astimezone(UTC),
        "message": text[:1024],
        "event": {"kind": FAILURE_KIND, "original": text},
        "error": {"type": "parse_failure", "message": failure.reason},
        "vigil": {"parse_failure": True, "parser": failure.parser},
    }
    if not valid:
        put(event, "vigil.invalid_utf8", True)
        put(event, "vigil.original_base64", base64.b64encode(failure.raw).decode("ascii"))
    return event


def stamp_origin(event: Event, meta: BatchMeta) -> None:
    """What the receiver knew: the input, transport and sender's address (ECS ``log.source.address``)."""
    if meta.peer and get(event, "log.source.address") is None:
        put(event, "log.source.address", meta.peer)
    if meta.transport:
        put(event, "vigil.transport", meta.transport)
    put(event, "vigil.input", meta.source)


def normalise(results: Sequence[Event | ParseFailure], meta: BatchMeta,
              enrichers: Sequence[Enricher] = ()) -> tuple[list[Event], int]:
    """Parsed results to storable events, in order; also the number of parse failures among them."""
    events: list[Event] = []
    failures = 0
    for result in results:
        if isinstance(result, ParseFailure):
            failures += 1
            event = failure_event(result, meta)
        else:
            event = result
        stamp_origin(event, meta)
        events.append(event)
    for enricher in enrichers:
        try:
            enricher.enrich(events)
        except Exception:  # an enrichment bug must not lose the batch
            log.exception("enricher %s failed on a batch of %d events from %s; stored without it",
                          getattr(enricher, "name", enricher), len(events), meta.source)
    return events, failures
