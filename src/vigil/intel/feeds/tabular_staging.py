"""CSV rows and list lines straight to staging lines, without an item per row (``CsvParser.stage``,
``LinesParser.stage``).

Most of a feed's rows repeat the same few cells besides the value and the dates (the type, the tags, the
family, the confidence), and those cells alone make the end of the row's staging line (``Stager.tail``).
So a row costs its value's check, two memo look-ups and one f-string: what a row off that path would
cost in items and staging together is paid once per distinct cells (once per type for a plain list).

Exactness comes first: any row the fast path is not sure of (a value that needs refanging or fails, a date
not seen yet, cells not seen yet, a STIX pattern) goes through the item path (``_CsvPlan.converter``, the
feed's defaults, ``Stager.line``), which also gives its error, and what that path wrote for distinct cells
is what later rows with those cells reuse.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import BinaryIO

from vigil.core.errors import BadInput
from vigil.intel.feeds.tabular import (
    _PLAIN_IPV4,
    MEMO_SIZE,
    _CsvPlan,
    guess_value,
    indicator_fields,
    make_indicator,
    parse_time,
    release,
    text_lines,
    value_normaliser,
)
from vigil.intel.feeds.tabular_options import NULLS, Shared
from vigil.intel.indicators import IndicatorType, InvalidValue, ItemError, ParsedIndicator
from vigil.intel.staging import Stager, staged_time

_PATTERN = IndicatorType.PATTERN


def shape_columns(plan: _CsvPlan) -> tuple[int, ...]:
    """The cells that decide a row's tail (``Stager.tail``) besides its type: two rows alike in these have the
    same tail."""
    return tuple(position for position in (plan.confidence, *plan.tags, plan.description, plan.malware)
                 if position is not None)


def row_stager(plan: _CsvPlan, stager: Stager, *, finish: Callable[[ParsedIndicator], ParsedIndicator],
               refuse: Callable[[ItemError], None]) -> Callable[[list[str], int], str | None]:
    """The function that turns one row's cells (the record starting at line ``number``) into its staging
    line, or ``None`` when the row is refused (the error went to ``refuse``)."""
    item_of = plan.converter()
    value_column, type_column, kind_of = plan.value, plan.type, plan.kind_of
    # A type column wins over a default type, as in the item path.
    fixed_kind, fixed_normaliser = plan.fixed if plan.fixed is not None and type_column is None else (None, None)
    normalisers = plan.normalisers
    # A fixed IPv4 type: ``value_normaliser``'s own first check, without the call.
    plain_ipv4 = _PLAIN_IPV4.fullmatch if fixed_kind is IndicatorType.IPV4 else None
    first_column, last_column = plan.first_seen, plan.last_seen
    # The cells that decide a row's tail, besides its type (which decides nothing more).
    shape = shape_columns(plan)
    only = shape[0] if len(shape) == 1 else None
    times: dict[str, str] = {}  # a date cell → its staged text ("" for a null cell)
    tails: dict[Hashable, str] = {}  # (type, the shape's cells) → the tail the item path gave them

    def by_item(cells: list[str], number: int, key: Hashable | None) -> str | None:
        item = item_of(cells, number)
        if isinstance(item, ItemError):
            refuse(item)
            return None
        assert isinstance(item, ParsedIndicator)  # a row is never an actor or the like
        item = finish(item)
        line = stager.line(number, item)
        if key is not None and len(tails) < MEMO_SIZE:
            tails[key] = line.split("\t", 4)[4]
        return line

    def staged(cells: list[str], position: int | None) -> str | None:
        """A date cell's staged text, None when it is not known yet."""
        if position is None or position >= len(cells):
            return ""
        raw = cells[position]
        text = times.get(raw)
        if text is None:
            text = staged_cell_time(raw)
            if text is None:
                return None  # the item path says why
            if len(times) < MEMO_SIZE:
                times[raw] = text
        return text

    def convert(cells: list[str], number: int) -> str | None:
        count = len(cells)
        try:
            raw = cells[value_column]
            if plain_ipv4 is not None:
                kind, value = fixed_kind, raw.strip()
                if not plain_ipv4(value):
                    value = fixed_normaliser(raw)  # type: ignore[misc]
            elif fixed_normaliser is not None:
                kind, value = fixed_kind, fixed_normaliser(raw)
            elif type_column is not None:
                kind = kind_of(cells[type_column] if type_column < count else "")
                value = normalisers[kind](raw)
            else:
                kind, value = guess_value(raw)
        except (IndexError, ValueError):  # InvalidValue included
            return by_item(cells, number, None)
        if kind is _PATTERN:
            return by_item(cells, number, None)
        # The type by identity (an enum member is one object; hashing it runs Python code), and only when
        # it varies from row to row.
        if only is not None:
            key: Hashable = cells[only] if only < count else None
            if fixed_kind is None:
                key = (id(kind), key)
        elif shape:
            key = (id(kind), *(cells[position] if position < count else None for position in shape))
        else:
            key = id(kind)
        tail = tails.get(key)
        first = times.get(cells[first_column]) if first_column is not None and first_column < count else None
        if first is None:
            first = staged(cells, first_column)
        last = staged(cells, last_column) if last_column is not None else ""
        if tail is None or first is None or last is None:
            return by_item(cells, number, key)
        return f"{number}\t{value}\t{first}\t{last}\t{tail}"

    return convert


def staged_cell_time(raw: str) -> str | None:
    """A date cell as a staging line writes it: "" for a null cell, None when it is no date (the item path
    then refuses the row, saying why)."""
    stripped = raw.strip()
    if stripped.lower() in NULLS:
        return ""
    try:
        return staged_time(parse_time(stripped))
    except ValueError:
        return None


def staged_list(source: BinaryIO, kind: IndicatorType | None, comment: str, shared: Shared, stager: Stager, *,
                finish: Callable[[ParsedIndicator], ParsedIndicator],
                refuse: Callable[[ItemError], None]) -> Iterator[str]:
    """``LinesParser.parse``'s loop, writing staging lines: a plain list's lines differ only by their value and
    its type, so the tail is the item path's once per type."""
    base = indicator_fields(type=kind, tags=shared.tags, confidence=shared.confidence, tlp=shared.tlp)
    fixed = None if kind is None else value_normaliser(kind)
    tails: dict[int, str] = {}  # id(type) → the tail the item path gave it
    text = text_lines(source)
    try:
        for number, line in enumerate(text, 1):
            value = line.strip()
            if not value or (comment and value.startswith(comment)):
                continue
            if number == 1 and "\x00" in value:
                raise BadInput("the feed is not text (it contains NUL bytes): is it compressed or binary?")
            if " " in value or "\t" in value:
                value = value.split(None, 1)[0]  # "1.10.16.0/20 ; SBL256894": the rest is a comment
            try:
                if fixed is None:
                    found, value = guess_value(value)
                else:
                    found, value = kind, fixed(value)  # type: ignore[assignment]
            except InvalidValue as exc:
                refuse(ItemError(f"line {number}", str(exc)))
                continue
            tail = tails.get(id(found))
            if tail is None or found is _PATTERN:
                values = base.copy()
                values["type"], values["value"], values["position"] = found, value, f"line {number}"
                staged_line = stager.line(number, finish(make_indicator(values)))
                if found is not _PATTERN and len(tails) < MEMO_SIZE:
                    tails[id(found)] = staged_line.split("\t", 4)[4]
                yield staged_line
                continue
            yield f"{number}\t{value}\t\t\t{tail}"
    finally:
        release(text)
