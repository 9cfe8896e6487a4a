"""What the JSON-family parsers share: decoding one object, dotted keys to nested objects, timestamps.

Every function here raises ``ParseError`` (never another exception) for input it cannot use.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, tzinfo
from functools import cache
from typing import Any

import orjson

from vigil.siem.parsers.base import Event, ParseContext, ParseError, get, keep_original, put

# Epoch numbers at or above this are milliseconds (1e11 seconds is the year 5138).
_MILLIS_FROM = 100_000_000_000
# ... and at or above this, microseconds.
_MICROS_FROM = 100_000_000_000_000


_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1


def load_object(raw: bytes) -> dict[str, Any]:
    """One JSON object; invalid JSON or any other JSON value is a ``ParseError`` saying why."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ParseError(f"expected a JSON object, got {json_type(value)}")
    return value


def json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def expand_dotted(document: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys (``"source.ip": x``) become nested objects (``{"source": {"ip": x}}``), at every depth.

    A dotted key that would overwrite a non-object value (``"source": "a"`` and ``"source.ip": x``), or
    that has an empty part (``"a..b"``, ``"."``), is kept as it is. Iterative, so any nesting depth works.
    """
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(item for item in node if isinstance(item, dict | list))
            continue
        dotted = [key for key in node if "." in key]
        for key in dotted:
            parts = key.split(".")
            if "" in parts:
                continue
            target = node
            for part in parts[:-1]:
                child = target.get(part)
                if child is None:
                    child = {}
                    target[part] = child
                if not isinstance(child, dict):
                    break
                target = child
            else:
                if parts[-1] in target and isinstance(target[parts[-1]], dict) and isinstance(node[key], dict):
                    target[parts[-1]].update(node.pop(key))
                elif parts[-1] not in target:
                    target[parts[-1]] = node.pop(key)
        stack.extend(value for value in node.values() if isinstance(value, dict | list))
    return document


def to_utc(value: Any, zone: tzinfo) -> datetime:
    """An ISO 8601 string (zone-less means ``zone``) or epoch seconds/millis/micros to an aware UTC datetime."""
    try:
        if isinstance(value, bool):
            raise ParseError(f"timestamp is a boolean: {value!r}")
        if isinstance(value, int | float):
            return _from_epoch(float(value))
        if isinstance(value, str):
            text = value.strip()
            try:
                return _from_epoch(float(text))
            except ValueError:
                pass
            stamp = datetime.fromisoformat(text)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=zone)
            return stamp.astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"unreadable timestamp {value!r}: {exc}") from None
    raise ParseError(f"timestamp is {json_type(value)}, not a string or a number")


def _from_epoch(number: float) -> datetime:
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    magnitude = abs(number)
    if magnitude >= _MICROS_FROM:
        number /= 1_000_000
    elif magnitude >= _MILLIS_FROM:
        number /= 1000
    return datetime.fromtimestamp(number, UTC)


def first_timestamp(document: dict[str, Any], fields: tuple[str, ...], zone: tzinfo) -> datetime | None:
    """The first of ``fields`` present in ``document`` as UTC; None when none is present."""
    for name in fields:
        if name in document and document[name] is not None:
            return to_utc(document[name], zone)
    return None


def as_ip(value: Any) -> str | None:
    """A valid IPv4/IPv6 address as text (normalised), else None (``-``, empty, names, junk)."""
    if not isinstance(value, str) or not value or value == "-":
        return None
    try:
        return str(ipaddress.ip_address(value.strip().strip("[]")))
    except ValueError:
        return None


def as_port(value: Any) -> int | None:
    number = as_int(value)
    return number if number is not None and 0 <= number <= 65535 else None


def as_int(value: Any) -> int | None:
    """An int from an int or a decimal/``0x`` hex string; None otherwise, and None outside the 64-bit
    range (no store column or JSON encoder holds such a number; the raw record still keeps it)."""
    number: int | None = None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return None
    if number is None or not _INT64_MIN <= number <= _UINT64_MAX:
        return None
    return number


def put_present(event: Event, dotted: str, value: Any) -> None:
    """``put`` unless the value is missing (None, empty, Windows' ``-``)."""
    if value is None or value == "" or value == "-":
        return
    put(event, dotted, value)


@cache
def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(dotted.split("."))


def put_absent(event: Event, dotted: str, value: Any) -> None:
    """``put_present`` unless the event already has a value there (shipper's own ECS fields win).

    When a non-object is in the way (``"source": "x"``), what the shipper sent is kept.
    """
    if value is None or value == "" or value == "-":
        return
    *parents, leaf = _parts(dotted)
    node = event
    for part in parents:
        child = node.get(part)
        if child is None:
            child = {}
            node[part] = child
        elif not isinstance(child, dict):
            return
        node = child
    if leaf not in node:
        node[leaf] = value


def keep_shipped_original(event: Event, raw: bytes, ctx: ParseContext) -> None:
    """``keep_original`` for documents a shipper built: its own ``event.original`` (the log line it read)
    is the original and wins over the JSON document; with ``keep_original`` off, neither is kept."""
    shipped = get(event, "event.original")
    keep_original(event, raw, ctx)
    if ctx.keep_original and isinstance(shipped, str):
        put(event, "event.original", shipped)
    elif not ctx.keep_original and isinstance(event.get("event"), dict):
        event["event"].pop("original", None)
