"""The protocol every feed format implements, and how the formats are found."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO, Protocol, runtime_checkable

from vigil.core.plugins import load_group
from vigil.intel.indicators import ParsedItem

FEEDS_GROUP = "vigil.feeds"


@runtime_checkable
class FeedParser(Protocol):
    """Reads one format. ``parse`` streams: it yields each item as soon as it is read, so that a feed of
    millions of lines is never held whole, and it never raises for a bad item (it yields an ``ItemError``
    with the item's position and goes on). It raises ``vigil.core.errors.BadInput`` only when the
    source as a whole is not of its format or the options are wrong."""

    name: str
    description: str

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> Iterator[ParsedItem]:
        ...


class StreamedItems(Iterator[ParsedItem]):
    """A format's items, streamed, and counts of what it left out: ``skipped_types`` (items of types Vigil does
    not match), read after iteration. A format's subclass sets ``_items`` and adds its own counts."""

    def __init__(self) -> None:
        self.skipped_types: Counter[str] = Counter()
        self._items: Iterator[ParsedItem] = iter(())

    def __iter__(self) -> StreamedItems:
        return self

    def __next__(self) -> ParsedItem:
        return next(self._items)


def feed_parsers() -> dict[str, FeedParser]:
    """Every installed format by name (broken plugins are reported by ``vigil plugins``)."""
    return dict(load_group(FEEDS_GROUP, FeedParser).plugins)  # type: ignore[type-abstract]
