"""The ``EventStore`` interface: batched appends, scoped reads, aggregations and time pruning.

Every event belongs to an organisation unit (the unit of its source); every read takes ``unit_ids``
(None = all units) and applies it in the store. ``where_sql`` is SQL built by the search compiler
from ``vigil.siem.fields.FieldResolver`` expressions with ``?`` placeholders, the values in
``params``: no user text is ever part of it.

Exactly-once with the spool: ``append`` may carry the spool position (segment, offset) just after the
batch; it is recorded in the same transaction as the events, and a batch whose position is not past
the recorded one for its stream is skipped. After a crash the spool replays from ``last_position``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from vigil.siem.store.lookup import TokenKind, ValueMatch, ValueSet

Event = dict[str, Any]
# An opaque place in the spool: (segment number, byte offset after the batch). Ordered.
SpoolPosition = tuple[int, int]
Order = Literal["asc", "desc"]
StoredRow = tuple[int, int, str, datetime, str]  # (id, unit_id, source, ts, the document as JSON text)


@dataclass(frozen=True)
class StoredEvent:
    id: int
    ts: datetime
    source: str
    unit_id: int
    doc: Event


@dataclass(frozen=True)
class AppendResult:
    stored: int  # events written by this call (0 when the batch was already stored)
    skipped: bool  # True when the spool position showed the batch was already stored


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int


@dataclass(frozen=True)
class TermCount:
    value: Any
    count: int


class EventStore(Protocol):
    def append(self, events: Sequence[Event], *, unit_id: int, source: str,
               spool_position: SpoolPosition | None = None, stream: str = "spool") -> AppendResult:
        """Store a batch in one transaction (with its spool position, when given)."""
        ...

    def append_json(self, documents: Sequence[str | bytes], *, unit_id: int, source: str,
                    spool_position: SpoolPosition | None = None, stream: str = "spool") -> AppendResult:
        """``append`` for events already serialised as JSON objects; refuses a batch with anything else whole."""
        ...

    def last_position(self, stream: str = "spool") -> SpoolPosition | None:
        """The spool position of the last batch stored for ``stream``; None before the first."""
        ...

    def count(self, where_sql: str = "", params: Sequence[Any] = (), *, unit_ids: Sequence[int] | None = None,
              start: datetime | None = None, end: datetime | None = None, at_most: int | None = None) -> int:
        """Matching events; with ``at_most``, counting stops there (a search page's "10,000+" total)."""
        ...

    def search(self, where_sql: str = "", params: Sequence[Any] = (), *, unit_ids: Sequence[int] | None = None,
               start: datetime | None = None, end: datetime | None = None, limit: int = 100, offset: int = 0,
               order: Order = "desc") -> list[StoredEvent]:
        """Matching events in time order (``desc``: newest first), ``limit`` from ``offset``."""
        ...

    def histogram(self, where_sql: str = "", params: Sequence[Any] = (), *, interval_seconds: int,
                  unit_ids: Sequence[int] | None = None, start: datetime | None = None,
                  end: datetime | None = None) -> list[Bucket]:
        """Counts per time bucket of ``interval_seconds`` (buckets with events only, oldest first)."""
        ...

    def top_values(self, field: str, where_sql: str = "", params: Sequence[Any] = (), *, limit: int = 10,
                   unit_ids: Sequence[int] | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> list[TermCount]:
        """The most frequent values of a field among matching events (list fields count each item)."""
        ...

    def prune(self, older_than: datetime, *, source: str | None = None) -> int:
        """Delete events with a timestamp before ``older_than`` (of one source, or all); the number deleted."""
        ...

    def match_values(self, sets: Sequence[ValueSet], *, start: datetime, end: datetime) -> list[ValueMatch]:
        """Events between ``start`` and ``end`` carrying any of the values (one join in the store), grouped by
        value, unit, source, field and observed value (a retro-hunt's question)."""
        ...

    def documents_with_tokens(self, tokens: Mapping[TokenKind, Sequence[str]], *, start: datetime, end: datetime,
                              chunk: int = 5_000) -> Iterator[list[StoredRow]]:
        """Events between ``start`` and ``end`` whose documents hold one of the tokens (``lookup.TOKEN_PATTERNS``:
        hashes, e-mail addresses; values in lower case), oldest first, in chunks: for what no typed column
        holds (a retro-hunt's question; the caller reads each document)."""
        ...

    def oldest(self, source: str | None = None) -> datetime | None:
        """The timestamp of the oldest event held (of one source, or all); None when there is none."""
        ...

    def close(self) -> None:
        ...
