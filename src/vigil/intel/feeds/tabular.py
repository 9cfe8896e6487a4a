"""CSV and plain-list feeds: one indicator per row or line, read as a stream.

``CsvParser`` (format ``csv``) takes the indicator from the column its options name, its type from a
type column (mapped through ``type_map``), a fixed ``default_type`` or a guess, and dates, tags,
confidence, description and malware family from other columns. ``LinesParser`` (format ``lines``)
reads one value per line, its type given or guessed. Blank lines and comment lines are skipped; a row
that cannot be read is an ``ItemError`` at ``line N``, and every other row is kept.

Both read the source line by line and never hold it whole. The options become a plan once (column
positions, the type's normaliser, the fields every indicator shares), so a row costs a split, a
validation and one object: a million-line blocklist parses in about a second. An import skips the objects:
``stage`` writes the indicator store's staging lines directly (``tabular_staging``), the same as the items
would give. The options are checked in ``tabular_options``.

``parse_time`` and ``tlp_level`` are shared with the JSON formats (MISP, OTX).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar, TypeVar

from vigil.core.errors import BadInput
from vigil.intel.feeds.tabular_options import (
    LINES_OPTIONS,
    NULLS,
    ColumnRef,
    CsvOptions,
    Shared,
    indicator_type_option,
    refuse_options,
    shared_options,
    split_tags,
)
from vigil.intel.feeds.tabular_options import tlp_level as tlp_level  # the JSON formats read TLP the same way
from vigil.intel.indicators import (
    IndicatorType,
    InvalidValue,
    ItemError,
    ParsedIndicator,
    ParsedItem,
    Related,
    guess,
    normalise,
)
from vigil.intel.staging import NativeRows, Stager

_T = TypeVar("_T")

MEMO_SIZE = 100_000  # distinct dates, tag cells and families remembered per parse
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_IPV4 = re.compile(r"\.".join([_OCTET] * 4))  # unrolled: a fifth faster than {3}
_PLAIN_IPV4_PORT = re.compile(_PLAIN_IPV4.pattern + r":\d{1,5}")
_PLAIN_HEX = re.compile(r"[0-9a-fA-F]+")
_HASH_LENGTHS = {32: IndicatorType.MD5, 40: IndicatorType.SHA1, 64: IndicatorType.SHA256}
_EPOCH = re.compile(r"\d{9,17}(?:\.\d+)?")


def parse_time(text: str) -> datetime:
    """An aware UTC datetime from ISO 8601 (``2024-01-15 10:05:09``, ``…T…Z``, a bare date) or epoch
    seconds (milli- and microseconds are recognised by their size). Zone-less times are UTC, as feeds
    write them. ``ValueError`` says why not."""
    value = text.strip()
    if _EPOCH.fullmatch(value):
        seconds = float(value)
        while seconds > 1e11:  # milliseconds or microseconds since the epoch
            seconds /= 1000
        return datetime.fromtimestamp(seconds, UTC)
    value = value.removesuffix("(UTC)").removesuffix("UTC").strip()
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date and time (ISO 8601 or epoch seconds)") from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


# Creating a frozen dataclass through ``__init__`` costs a microsecond (one guarded setattr per field);
# handing it a complete ``__dict__`` costs a fifth of that, most of a row's budget. ``__init__`` is used
# instead if the class ever stops having a ``__dict__``.
_FAST_INDICATORS = not hasattr(ParsedIndicator, "__slots__")


def make_indicator(values: dict[str, Any]) -> ParsedIndicator:
    """An indicator from a complete field dict (``indicator_fields``), without the cost of ``__init__``."""
    if not _FAST_INDICATORS:
        return ParsedIndicator(**values)
    item = object.__new__(ParsedIndicator)
    object.__setattr__(item, "__dict__", values)
    return item
_DEFAULTS: dict[str, Any] = {
    field.name: field.default for field in fields(ParsedIndicator) if field.name not in ("type", "value")}


def indicator_fields(**values: Any) -> dict[str, Any]:
    """A complete field dict for ``make_indicator``: the defaults with ``values`` over them."""
    return {"type": None, "value": "", **_DEFAULTS, **values}


def value_normaliser(kind: IndicatorType) -> Callable[[str], str]:
    """``normalise`` for one type, with a fast path for the values block lists are made of: a plain IPv4
    address or hexadecimal hash is already canonical (no refanging can change it). An IP with a port
    (``1.2.3.4:80``, ``[2001:db8::1]:443``, as ThreatFox writes ``ip:port``) keeps the address."""
    if kind is IndicatorType.IPV4:
        def ipv4(raw: str) -> str:
            value = raw.strip()
            if _PLAIN_IPV4.fullmatch(value):
                return value
            if _PLAIN_IPV4_PORT.fullmatch(value):
                return value.rpartition(":")[0]
            return normalise(kind, value)
        return ipv4
    if kind is IndicatorType.IPV6:
        def ipv6(raw: str) -> str:
            value = raw.strip()
            if value.startswith("[") and "]:" in value:
                value = value[1:value.index("]")]
            return normalise(kind, value)
        return ipv6
    if kind in (IndicatorType.MD5, IndicatorType.SHA1, IndicatorType.SHA256):
        def hexadecimal(raw: str) -> str:
            value = raw.strip()
            if _HASH_LENGTHS.get(len(value)) is kind and _PLAIN_HEX.fullmatch(value):
                return value.lower()
            return normalise(kind, value)
        return hexadecimal
    return lambda raw: normalise(kind, raw)


def guess_value(raw: str) -> tuple[IndicatorType, str]:
    """``indicators.guess`` with the same fast path as ``value_normaliser``."""
    value = raw.strip()
    if _PLAIN_IPV4.fullmatch(value):
        return IndicatorType.IPV4, value
    kind = _HASH_LENGTHS.get(len(value))
    if kind is not None and _PLAIN_HEX.fullmatch(value):
        return kind, value.lower()
    if _PLAIN_IPV4_PORT.fullmatch(value):
        return IndicatorType.IPV4, value.rpartition(":")[0]
    return guess(value)


def text_lines(source: BinaryIO) -> io.TextIOWrapper:
    """The source as text lines, bad bytes replaced (the value then fails validation, with its line)."""
    return io.TextIOWrapper(source, encoding="utf-8-sig", errors="replace", newline="")


def release(text: io.TextIOWrapper) -> None:
    """Detach the wrapper so that collecting it does not close the caller's source."""
    with contextlib.suppress(ValueError):  # already detached, or the source was closed by its owner
        text.detach()


class _OneRecord:
    """Feeds a reused ``csv.reader`` one record at a time (creating a reader per row costs more than
    reading the row). Records arrive whole, quoted line breaks included, so the reader never asks twice."""

    def __init__(self) -> None:
        self.record: str | None = None

    def __iter__(self) -> _OneRecord:
        return self

    def __next__(self) -> str:
        record, self.record = self.record, None
        if record is None:
            raise StopIteration
        return record


class _CsvPlan:
    """The options resolved against the header: column positions and the work each row needs."""

    def __init__(self, options: CsvOptions, names: Sequence[str]) -> None:
        self.options = options
        self.names = tuple(names)
        self.value = self._position(options.value, "value")
        self.type = None if options.type_column is None else self._position(options.type_column, "type")
        self.first_seen = self._optional(options.first_seen, "first_seen")
        self.last_seen = self._optional(options.last_seen, "last_seen")
        self.confidence = self._optional(options.confidence, "confidence")
        self.description = self._optional(options.description, "description")
        self.malware = self._optional(options.malware, "malware")
        self.tags = tuple(self._position(ref, "tags") for ref in options.tags)
        self._times: dict[str, datetime] = {}
        self._time_columns = tuple((name, position) for name, position in (
            ("first_seen", self.first_seen), ("last_seen", self.last_seen)) if position is not None)
        self._tag_sets: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._related: dict[str, tuple[Related, ...]] = {}
        self.has_extras = bool(self.tags) or any(position is not None for position in (
            self.first_seen, self.last_seen, self.confidence, self.description, self.malware))
        shared = options.shared
        self.base = indicator_fields(tags=shared.tags, confidence=shared.confidence, tlp=shared.tlp)
        self.normalisers = {kind: value_normaliser(kind) for kind in IndicatorType}
        self.fixed = None if options.default_type is None else (
            options.default_type, self.normalisers[options.default_type])
        self.kinds: dict[str, IndicatorType] = {}
        self.header_value = self.names[self.value].strip() if self.value < len(self.names) else None

    def _position(self, ref: ColumnRef, option: str) -> int:
        if isinstance(ref, int):
            return ref
        for candidate in (ref, ref.casefold()):
            for index, name in enumerate(self.names):
                if name.strip() == candidate or name.strip().casefold() == candidate:
                    return index
        raise BadInput(f"bad csv feed options: {option}: no column {ref!r}; the columns are "
                       f"{', '.join(repr(name) for name in self.names) or '(none)'}",
                       errors=[{"field": option, "message": f"no column {ref!r}"}])

    def _optional(self, ref: ColumnRef | None, option: str) -> int | None:
        return None if ref is None else self._position(ref, option)

    def is_header(self, cells: list[str]) -> bool:
        """A copy of the header inside the data (a feed that ships its header with the rows)."""
        if self.value >= len(cells) or cells[self.value].strip() != self.header_value:
            return False  # the usual answer, from one cell
        return [cell.strip() for cell in cells] == [name.strip() for name in self.names]

    def kind_of(self, raw: str) -> IndicatorType:
        kind = self.kinds.get(raw)
        if kind is None:
            name = raw.strip().lower()
            mapped = (self.options.type_map or {}).get(name)
            try:
                kind = mapped if mapped is not None else IndicatorType(name)
            except ValueError:
                raise InvalidValue(f"unknown indicator type {raw.strip()!r}: map it with the type_map option "
                                   f"to one of {', '.join(IndicatorType)}") from None
            self.kinds[raw] = kind
        return kind

    def converter(self) -> Callable[[list[str], int], ParsedItem]:
        """The function that turns one row's cells (the record starting at line ``number``) into an item,
        everything it needs bound as locals (this runs once per row: attribute look-ups are a measurable
        share of its time)."""
        value_column, type_column, fixed, kind_of = self.value, self.type, self.fixed, self.kind_of
        normalisers, base, fill = self.normalisers, self.base, (self._fill if self.has_extras else None)
        new, set_attribute = object.__new__, object.__setattr__

        def convert(cells: list[str], number: int) -> ParsedItem:
            position = f"line {number}"
            try:
                raw = cells[value_column]
            except IndexError:
                return ItemError(position, f"no column {value_column} (0-based): the row has {len(cells)} columns")
            try:
                if type_column is not None:
                    kind = kind_of(cells[type_column] if type_column < len(cells) else "")
                    value = normalisers[kind](raw)
                elif fixed is not None:
                    kind, value = fixed[0], fixed[1](raw)
                else:
                    kind, value = guess_value(raw)
                values = base.copy()
                values["type"], values["value"], values["position"] = kind, value, position
                if fill is not None:
                    fill(values, cells)
            except (InvalidValue, ValueError) as exc:
                return ItemError(position, str(exc))
            if _FAST_INDICATORS:
                item = new(ParsedIndicator)
                set_attribute(item, "__dict__", values)
                return item
            return ParsedIndicator(**values)
        return convert

    def _fill(self, values: dict[str, Any], cells: list[str]) -> None:
        """The optional columns of one row into ``values``; ``ValueError`` says which cell is wrong. Feeds repeat
        their dates, tags and families from row to row, so each distinct cell is read once (bounded memos);
        only the columns the options name are looked at."""
        count = len(cells)
        for name, position in self._time_columns:
            if position >= count:
                continue
            raw = cells[position]
            stamp = self._times.get(raw)
            if stamp is None:
                stripped = raw.strip()
                if stripped.lower() in NULLS:
                    continue
                try:
                    stamp = parse_time(stripped)
                except ValueError as exc:
                    raise ValueError(f"{name.replace('_', ' ')}: {exc}") from None
                if len(self._times) < MEMO_SIZE:
                    self._times[raw] = stamp
            values[name] = stamp
        if self.confidence is not None:
            text = _cell(cells, self.confidence)
            if text is not None:
                if not text.isdigit() or not 0 <= int(text) <= 100:
                    raise ValueError(f"confidence {text!r} is not a whole number from 0 to 100")
                values["confidence"] = int(text)
        if self.tags:
            tag_cells = (cells[self.tags[0]] if self.tags[0] < count else "",) if len(self.tags) == 1 else tuple(
                cells[p] if p < count else "" for p in self.tags)
            tags = self._tag_sets.get(tag_cells)
            if tags is None:
                row_tags = [tag for raw in tag_cells for tag in split_tags(raw)]
                tags = tuple(dict.fromkeys([*values["tags"], *row_tags]))
                if len(self._tag_sets) < MEMO_SIZE:
                    self._tag_sets[tag_cells] = tags
            values["tags"] = tags
        if self.description is not None:
            text = _cell(cells, self.description)
            if text is not None:
                values["description"] = text
        if self.malware is not None and self.malware < count:
            raw = cells[self.malware]
            related = self._related.get(raw)
            if related is None:
                family = raw.strip()
                related = (Related("malware", family),) if family.lower() not in NULLS else ()
                if len(self._related) < MEMO_SIZE:
                    self._related[raw] = related
            if related:
                values["related"] = related


def _cell(cells: list[str], position: int | None) -> str | None:
    """A cell's text, None when the column is absent or the cell empty or a null word."""
    if position is None or position >= len(cells):
        return None
    text = cells[position].strip()
    return None if text.lower() in NULLS else text


class CsvParser:
    """Comma- (or otherwise) separated feeds; the options say which column holds what."""

    name: ClassVar[str] = "csv"
    description: ClassVar[str] = ("CSV: one indicator per row, the value, type, dates, tags and confidence "
                                  "from the columns the options name")

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> Iterator[ParsedItem]:
        # Options are refused before any read.
        return self._rows(source, CsvOptions.from_mapping(options), _CsvPlan.converter)

    def stage(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
              finish: Callable[[ParsedIndicator], ParsedIndicator],
              refuse: Callable[[ItemError], None]) -> Iterator[str]:
        """The staging lines of the items ``parse`` yields (``staging.StagingParser``)."""
        from vigil.intel.feeds.tabular_staging import row_stager  # here: that module builds on this one

        return self._rows(source, CsvOptions.from_mapping(options),
                          lambda plan: row_stager(plan, stager, finish=finish, refuse=refuse))

    def native(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
               finish: Callable[[ParsedIndicator], ParsedIndicator],
               refuse: Callable[[ItemError], None]) -> NativeRows | None:
        """DuckDB's reading of a big file of one plainly checked type (``tabular_native``), None for the rest."""
        from vigil.intel.feeds.tabular_native import NativeCsv  # here: that module builds on this one

        return NativeCsv.of(source, CsvOptions.from_mapping(options), stager, finish=finish, refuse=refuse)

    @staticmethod
    def _rows(source: BinaryIO, options: CsvOptions,
              converter: Callable[[_CsvPlan], Callable[[list[str], int], _T | None]]) -> Iterator[_T]:
        """Each record's ``converter(plan)(cells, first line number)``, the ``None`` ones left out."""
        text = text_lines(source)
        try:
            yield from CsvParser.records(enumerate(text, 1), options, converter)
        finally:
            release(text)

    @staticmethod
    def records(numbered: Iterator[tuple[int, str]], options: CsvOptions,
                converter: Callable[[_CsvPlan], Callable[[list[str], int], _T | None]]) -> Iterator[_T]:
        """``_rows`` over (line number, line) pairs: the lines of a file, or some of them (the native reader hands
        over the lines it leaves to this one, with their numbers; the first line it hands over is the header or
        the first row, as in the file)."""
        one = _OneRecord()
        reader = csv.reader(one, delimiter=options.delimiter, quotechar=options.quotechar, skipinitialspace=True)
        quote, delimiter, comment = options.quotechar, options.delimiter, options.comment
        names: Sequence[str] = options.columns
        plan: _CsvPlan | None = None
        convert: Callable[[list[str], int], _T | None] | None = None
        header_value: str | None = None  # a copy of the header is looked for only in rows with this value
        value_column = 0
        for number, line in numbered:  # one loop for every row and no generator in between: the hot path
            if (comment and line.startswith(comment)) or line.isspace() or not line:  # strip() would copy
                continue
            first = number
            if quote not in line:
                cells = line.rstrip("\r\n").split(delimiter)
            else:
                if line.count(quote) % 2:  # a quoted field goes on over the next lines
                    parts = [line]
                    for _, more in numbered:
                        parts.append(more)
                        if more.count(quote) % 2:
                            break
                    line = "".join(parts)
                one.record = line
                cells = next(reader, [])
            if convert is None or plan is None:
                if "\x00" in line:
                    raise BadInput("the feed is not text (it contains NUL bytes): is it compressed or binary?")
                if options.header:
                    names = names or [cell.strip() for cell in cells]
                plan = _CsvPlan(options, names)
                convert = converter(plan)
                header_value, value_column = plan.header_value if names else None, plan.value
                if options.header:
                    continue
            if (header_value is not None and value_column < len(cells)
                    and cells[value_column].strip() == header_value and plan.is_header(cells)):
                continue
            converted = convert(cells, first)
            if converted is not None:
                yield converted


class LinesParser:
    """Plain lists: one value per line (``#`` comments and blank lines skipped), its type given or guessed."""

    name: ClassVar[str] = "lines"
    description: ClassVar[str] = "Plain list: one IP, network, domain, URL, hash or e-mail address per line"

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> Iterator[ParsedItem]:
        return self._items(source, *self.checked(options))

    def stage(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
              finish: Callable[[ParsedIndicator], ParsedIndicator],
              refuse: Callable[[ItemError], None]) -> Iterator[str]:
        """The staging lines of the items ``parse`` yields (``staging.StagingParser``)."""
        from vigil.intel.feeds.tabular_staging import staged_list  # here: that module builds on this one

        return staged_list(source, *self.checked(options), stager, finish=finish, refuse=refuse)

    def native(self, source: BinaryIO, options: Mapping[str, Any], stager: Stager, *,
               finish: Callable[[ParsedIndicator], ParsedIndicator],
               refuse: Callable[[ItemError], None]) -> NativeRows | None:
        """None: plain lists are read by ``stage`` (``staging.StagingParser``)."""
        return None

    @staticmethod
    def checked(options: Mapping[str, Any]) -> tuple[IndicatorType | None, str, Shared]:
        """The type, comment prefix and shared fields the options give; ``BadInput`` lists what is wrong."""
        problems: list[dict[str, str]] = []
        unknown = sorted(set(options) - LINES_OPTIONS)
        if unknown:
            problems.append({"field": ", ".join(unknown),
                             "message": f"unknown option; known: {', '.join(sorted(LINES_OPTIONS))}"})
        kind = None if options.get("type") is None else indicator_type_option(options["type"], "type", problems)
        comment = options.get("comment", "#")
        if not isinstance(comment, str):
            problems.append({"field": "comment", "message": "the prefix of lines to skip (empty: none)"})
        shared = shared_options(options, problems)
        refuse_options("lines", problems)
        return kind, comment, shared

    def _items(self, source: BinaryIO, kind: IndicatorType | None, comment: str,
               shared: Shared) -> Iterator[ParsedItem]:
        base = indicator_fields(type=kind, tags=shared.tags, confidence=shared.confidence, tlp=shared.tlp)
        fixed = None if kind is None else value_normaliser(kind)
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
                values = base.copy()
                try:
                    if fixed is None:
                        values["type"], values["value"] = guess_value(value)
                    else:
                        values["value"] = fixed(value)
                except InvalidValue as exc:
                    yield ItemError(f"line {number}", str(exc))
                    continue
                values["position"] = f"line {number}"
                yield make_indicator(values)
        finally:
            release(text)
