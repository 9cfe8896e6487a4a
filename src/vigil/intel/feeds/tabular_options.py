"""The options of the CSV and plain-list formats, checked before a line is read: ``CsvOptions`` for ``csv``,
the tags, confidence and TLP every indicator of a source shares for both, and the cell helpers both use."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vigil.core.errors import BadInput
from vigil.intel.indicators import TLP_LEVELS, IndicatorType

# Cells that mean "nothing here" in optional columns (ThreatFox writes "None").
NULLS = frozenset({"", "none", "null", "n/a", "-"})
_TAG_SEPARATORS = re.compile(r"[,;|]")
_TLP_ALIASES = {"white": "clear"}
_COLUMN_OPTIONS = ("value", "type", "first_seen", "last_seen", "confidence", "description", "malware")
_CSV_OPTIONS = frozenset({*_COLUMN_OPTIONS, "tags", "default_type", "type_map", "delimiter", "header", "columns",
                          "comment", "quotechar", "tags_all", "confidence_all", "tlp"})
LINES_OPTIONS = frozenset({"type", "comment", "tags_all", "confidence_all", "tlp"})


def tlp_level(text: str) -> str | None:
    """``tlp:white`` / ``WHITE`` / ``amber+strict`` → the TLP 2.0 level, or None when it is not one."""
    level = text.strip().lower().removeprefix("tlp:").strip()
    level = _TLP_ALIASES.get(level, level)
    return level if level in TLP_LEVELS else None


def split_tags(text: str) -> tuple[str, ...]:
    """``"elf,mips; Mozi|"`` → ``("elf", "mips", "Mozi")``: split on , ; or |, empty and null cells dropped."""
    tags = (tag.strip() for tag in _TAG_SEPARATORS.split(text))
    return tuple(dict.fromkeys(tag for tag in tags if tag.lower() not in NULLS))


@dataclass(frozen=True)
class Shared:
    """What every indicator of a source gets from the options: tags, confidence and TLP."""

    tags: tuple[str, ...] = ()
    confidence: int | None = None
    tlp: str | None = None


def shared_options(options: Mapping[str, Any], problems: list[dict[str, str]]) -> Shared:
    tags: tuple[str, ...] = ()
    raw_tags = options.get("tags_all", ())
    if isinstance(raw_tags, str):
        tags = split_tags(raw_tags)
    elif isinstance(raw_tags, Sequence) and all(isinstance(tag, str) for tag in raw_tags):
        tags = tuple(dict.fromkeys(tag.strip() for tag in raw_tags if tag.strip()))
    else:
        problems.append({"field": "tags_all", "message": "a list of tags or a comma-separated text"})
    confidence = options.get("confidence_all")
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, int)
                                   or not 0 <= confidence <= 100):
        problems.append({"field": "confidence_all", "message": "a whole number from 0 to 100"})
        confidence = None
    tlp = options.get("tlp")
    if tlp is not None:
        level = tlp_level(tlp) if isinstance(tlp, str) else None
        if level is None:
            problems.append({"field": "tlp", "message": f"one of {', '.join(TLP_LEVELS)} (or white)"})
        tlp = level
    return Shared(tags, confidence, tlp)


def indicator_type_option(raw: Any, option: str, problems: list[dict[str, str]]) -> IndicatorType | None:
    try:
        return IndicatorType(raw)
    except ValueError:
        problems.append({"field": option, "message": f"{raw!r} is not an indicator type; one of "
                                                     f"{', '.join(IndicatorType)}"})
        return None


def _single_character(options: Mapping[str, Any], name: str, default: str,
                      problems: list[dict[str, str]]) -> str:
    value = options.get(name, default)
    if not isinstance(value, str) or len(value) != 1:
        problems.append({"field": name, "message": "a single character"})
        return default
    return value


def refuse_options(format_name: str, problems: list[dict[str, str]]) -> None:
    if problems:
        summary = "; ".join(f"{problem['field']}: {problem['message']}" for problem in problems)
        raise BadInput(f"bad {format_name} feed options: {summary}", errors=problems)


ColumnRef = str | int


@dataclass(frozen=True)
class CsvOptions:
    """The options of a CSV feed, checked (``from_mapping`` raises ``BadInput`` listing every problem)."""

    value: ColumnRef
    type_column: ColumnRef | None = None
    default_type: IndicatorType | None = None  # neither a type column nor a default: each value is guessed
    type_map: Mapping[str, IndicatorType] | None = None
    first_seen: ColumnRef | None = None
    last_seen: ColumnRef | None = None
    tags: tuple[ColumnRef, ...] = ()
    confidence: ColumnRef | None = None
    description: ColumnRef | None = None
    malware: ColumnRef | None = None  # a malware family column → a Related malware
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = False
    columns: tuple[str, ...] = ()  # names for the columns when the header is missing or commented out
    comment: str = "#"
    shared: Shared = Shared()

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any]) -> CsvOptions:
        problems: list[dict[str, str]] = []
        unknown = sorted(set(options) - _CSV_OPTIONS)
        if unknown:
            problems.append({"field": ", ".join(unknown),
                             "message": f"unknown option; known: {', '.join(sorted(_CSV_OPTIONS))}"})
        refs: dict[str, ColumnRef | None] = {}
        for name in _COLUMN_OPTIONS:
            refs[name] = _column_ref(options.get(name), name, problems)
        if options.get("value") is None:
            problems.append({"field": "value", "message": "required: the column (name or 0-based index) of the value"})
        tags = options.get("tags", ())
        tag_refs = tuple(_column_ref(ref, "tags", problems) for ref in
                         (tags if isinstance(tags, list | tuple) else [tags]))
        default_type = None
        if options.get("default_type") is not None:
            default_type = indicator_type_option(options["default_type"], "default_type", problems)
        type_map: dict[str, IndicatorType] | None = None
        if options.get("type_map") is not None:
            if not isinstance(options["type_map"], Mapping):
                problems.append({"field": "type_map", "message": "a mapping of feed type → Vigil type"})
            else:
                type_map = {}
                for feed_type, vigil_type in options["type_map"].items():
                    kind = indicator_type_option(vigil_type, "type_map", problems)
                    if kind is not None:
                        type_map[str(feed_type).strip().lower()] = kind
        header = options.get("header", False)
        if not isinstance(header, bool):
            problems.append({"field": "header", "message": "true or false"})
        columns = options.get("columns", ())
        if not isinstance(columns, list | tuple) or not all(isinstance(name, str) for name in columns):
            problems.append({"field": "columns", "message": "a list of column names"})
            columns = ()
        comment = options.get("comment", "#")
        if not isinstance(comment, str):
            problems.append({"field": "comment", "message": "the prefix of lines to skip (empty: none)"})
            comment = "#"
        named = [ref for ref in (*refs.values(), *tag_refs) if isinstance(ref, str)]
        if named and not header and not columns:
            problems.append({"field": ", ".join(dict.fromkeys(named)),
                             "message": "columns named but the feed has no header: set header true, give "
                                        "'columns', or use 0-based indexes"})
        shared = shared_options(options, problems)
        delimiter = _single_character(options, "delimiter", ",", problems)
        quotechar = _single_character(options, "quotechar", '"', problems)
        refuse_options("csv", problems)
        value = refs["value"]
        assert value is not None  # refused above otherwise
        return cls(value=value, type_column=refs["type"], default_type=default_type, type_map=type_map,
                   first_seen=refs["first_seen"], last_seen=refs["last_seen"],
                   tags=tuple(ref for ref in tag_refs if ref is not None), confidence=refs["confidence"],
                   description=refs["description"], malware=refs["malware"], delimiter=delimiter,
                   quotechar=quotechar, header=bool(header), columns=tuple(name.strip() for name in columns),
                   comment=comment, shared=shared)


def _column_ref(raw: Any, option: str, problems: list[dict[str, str]]) -> ColumnRef | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    problems.append({"field": option, "message": "a column name or a 0-based column index"})
    return None
