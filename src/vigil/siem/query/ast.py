"""The typed syntax tree of a search query (Lucene/KQL subset). Every node is a frozen dataclass, so two
parses of the same query compare equal and a tree can be a dictionary key.

``field`` is ``None`` for a bare word or phrase, searched over the free-text fields (``message`` and the
original record). A field group ``user.name:(a OR b)`` is distributed at parse time into
``user.name:a OR user.name:b``; a comparison ``x:>10`` is a one-sided ``Range``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# What a field name may look like: ECS dotted names, ``@timestamp``, Windows native names (``EventID``).
FIELD_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@-]*")


@dataclass(frozen=True)
class MatchAll:
    """The empty query, ``*`` or ``*:*``: every event."""


@dataclass(frozen=True)
class Term:
    """``field:value`` or ``field:"a phrase"``: the literal value (escapes already removed)."""

    field: str | None
    value: str


@dataclass(frozen=True)
class Wildcard:
    """``field:adm*``: ``pattern`` keeps ``*`` and ``?`` as wildcards; a literal ``*``, ``?`` or ``\\`` is
    written with a backslash before it."""

    field: str | None
    pattern: str


@dataclass(frozen=True)
class Range:
    """``field:[low TO high]``, ``{low TO high}`` or a comparison; ``None`` is an open end (its flag is False)."""

    field: str
    low: str | None
    high: str | None
    include_low: bool
    include_high: bool


@dataclass(frozen=True)
class Exists:
    """``_exists_:field`` or ``field:*``."""

    field: str


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = MatchAll | Term | Wildcard | Range | Exists | Not | And | Or
Leaf = Term | Wildcard | Range | Exists
