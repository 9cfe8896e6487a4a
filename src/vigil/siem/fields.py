"""The event store's typed columns, and safe SQL for any field name.

Common ECS fields (and the native Windows ones Sigma rules use) get a typed column of their own, so
that filters and aggregations on them read one narrow column. Every field, typed or not, also stays in
the column ``doc`` holding the whole event as JSON text (``@timestamp`` as an ISO string there), so any
other field remains queryable through a JSON extraction.

``FieldResolver.resolve(field)`` turns a field name into a SQL expression. Field names are checked
against a strict pattern (letters, digits, ``_``, ``@``, ``-``, ``.``) and refused otherwise
(``BadInput``); nothing else a user typed ever becomes SQL text: values are always parameters.

The store fills typed columns from the document itself (DuckDB's JSON reader): a number or timestamp
that does not fit its column leaves the column NULL (the value stays in ``doc``); a text column holding
an object or a list keeps its JSON text.

JSON paths are case-sensitive (``User``, a native Windows field, is not ``user.name``); column names
are all lower case and distinct, since DuckDB identifiers ignore case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from vigil.core.errors import BadInput
from vigil.siem.parsers.base import get


class Kind(StrEnum):
    """What a resolved expression yields, so a query compiler can choose operators."""

    TEXT = "text"
    NUMBER = "number"
    TIMESTAMP = "timestamp"
    LIST = "list"  # a list of text values (VARCHAR[])
    JSON = "json"  # a field only in ``doc``: its value as text (numbers as digits); NULL when absent


@dataclass(frozen=True)
class Column:
    field: str  # the ECS (or native Windows) dotted name
    name: str  # the column's name in the events table
    sql_type: str  # the DuckDB type
    kind: Kind


def _column(field: str, name: str, sql_type: str = "VARCHAR") -> Column:
    kinds = {"VARCHAR": Kind.TEXT, "INTEGER": Kind.NUMBER, "BIGINT": Kind.NUMBER,
             "TIMESTAMPTZ": Kind.TIMESTAMP, "VARCHAR[]": Kind.LIST}
    return Column(field, name, sql_type, kinds[sql_type])


# The source a record came from and its organisation unit are given by the store's caller; they are
# also written into the document under ``vigil.*`` so the document alone tells them.
SOURCE_FIELD = "vigil.source"
UNIT_FIELD = "vigil.unit_id"

COLUMNS: tuple[Column, ...] = (
    _column("@timestamp", "ts", "TIMESTAMPTZ"),
    _column("event.ingested", "ingested", "TIMESTAMPTZ"),
    _column(SOURCE_FIELD, "source"),
    _column(UNIT_FIELD, "unit_id", "INTEGER"),
    _column("event.dataset", "event_dataset"),
    _column("event.module", "event_module"),
    _column("event.action", "event_action"),
    _column("event.outcome", "event_outcome"),
    _column("event.category", "event_category", "VARCHAR[]"),
    _column("event.code", "event_code"),
    _column("event.severity", "event_severity", "BIGINT"),
    _column("host.hostname", "host_hostname"),
    _column("source.ip", "source_ip"),
    _column("source.port", "source_port", "INTEGER"),
    _column("destination.ip", "destination_ip"),
    _column("destination.port", "destination_port", "INTEGER"),
    _column("user.name", "user_name"),
    _column("process.name", "process_name"),
    _column("process.pid", "process_pid", "BIGINT"),
    _column("process.command_line", "process_command_line"),
    _column("process.executable", "process_executable"),
    _column("url.original", "url_original"),
    _column("url.domain", "url_domain"),
    _column("file.path", "file_path"),
    _column("file.hash.sha256", "file_hash_sha256"),
    _column("dns.question.name", "dns_question_name"),
    _column("network.transport", "network_transport"),
    _column("rule.name", "rule_name"),
    _column("message", "message"),
    _column("event.original", "original"),
    # Native Windows fields, as SigmaHQ rules name them.
    _column("Channel", "win_channel"),
    _column("EventID", "win_event_id", "INTEGER"),
    _column("EventRecordID", "win_event_record_id", "BIGINT"),
    _column("Computer", "win_computer"),
    _column("Provider_Name", "win_provider_name"),
)

BY_FIELD: dict[str, Column] = {column.field: column for column in COLUMNS}

# Letters, digits, _, @, - and dots between non-empty parts; at most 32 parts of 128 characters.
FIELD_PATTERN = re.compile(r"^[A-Za-z0-9_@-]{1,128}(?:\.[A-Za-z0-9_@-]{1,128}){0,31}$")


def column_for(field: str) -> Column | None:
    """The typed column that holds a field, or None when the field lives only in ``doc``."""
    return BY_FIELD.get(field)


def check_field(field: str) -> str:
    """The field name itself when it is safe to use; else ``BadInput``."""
    if not isinstance(field, str) or not FIELD_PATTERN.match(field):
        raise BadInput(f"Invalid field name {field!r}: use letters, digits, '_', '@', '-' and dots between names",
                       errors=[{"field": "field", "message": "invalid field name"}])
    return field


def json_path(field: str) -> str:
    """The DuckDB JSON path of a (checked) dotted field inside ``doc``: ``$."a"."b"``."""
    return "$." + ".".join(f'"{part}"' for part in check_field(field).split("."))


@dataclass(frozen=True)
class Resolved:
    sql: str  # a SQL expression over the events table
    kind: Kind
    column: Column | None  # the typed column, when there is one


class FieldResolver:
    """Field names to SQL expressions over the events table (typed column, else JSON extraction)."""

    def resolve(self, field: str) -> str:
        return self.resolve_typed(field).sql

    def kind(self, field: str) -> Kind:
        return self.resolve_typed(field).kind

    def resolve_typed(self, field: str) -> Resolved:
        check_field(field)
        column = column_for(field)
        if column is not None:
            return Resolved(column.name, column.kind, column)
        # The path holds only checked characters inside double quotes: no user text can end it.
        return Resolved(f"json_extract_string(doc, '{json_path(field)}')", Kind.JSON, None)


def get_path(event: dict[str, Any], field: str) -> Any:
    """The value of a dotted field in a nested event; a top-level key with dots wins; None when absent."""
    return event[field] if field in event else get(event, field)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        return int(value.strip())
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else None
    return None


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    texts = [_text(item) for item in items]
    return [text for text in texts if text is not None]


_INT32 = 2**31


def coerce(column: Column, value: Any) -> Any:
    """A value as a column compares it (query parameters, the store's own timestamps); None when it does not fit."""
    if column.kind is Kind.TEXT:
        return _text(value)
    if column.kind is Kind.NUMBER:
        number = _number(value)
        if number is not None and column.sql_type == "INTEGER" and not -_INT32 <= number < _INT32:
            return None
        return number
    if column.kind is Kind.TIMESTAMP:
        return _timestamp(value)
    return _list(value)
