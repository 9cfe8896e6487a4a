"""Generic JSON: one object per record (an NDJSON line, or one element of a JSON array).

ECS documents pass through as they are; dotted keys (``"source.ip"``) become nested objects. The first
of ``@timestamp``, ``timestamp``, ``time``, ``ts`` (ISO 8601, zone-less read in the source's zone, or
epoch seconds/millis) becomes ``@timestamp`` in UTC; a record with none of them is stamped with its
arrival time, and one whose stamp cannot be read too, with ``vigil.timestamp_unreadable`` saying which
field and why (the record is still valid JSON and is kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import ClassVar

import orjson

from vigil.siem.parsers.base import Event, ParseContext, ParseError, get, put
from vigil.siem.parsers.jsoncommon import expand_dotted, first_timestamp, keep_shipped_original, load_object

TIME_FIELDS = ("@timestamp", "timestamp", "time", "ts")


class JsonParser:
    name: ClassVar[str] = "json"
    description: ClassVar[str] = "JSON objects, one per line (NDJSON) or in an array; ECS documents pass through"

    def sniff(self, sample: bytes) -> bool:
        return sample.lstrip()[:1] in (b"{", b"[")

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        event = expand_dotted(load_object(raw))
        try:
            stamp = first_timestamp(event, TIME_FIELDS, ctx.timezone)
        except ParseError as exc:
            stamp = None
            field = next(name for name in TIME_FIELDS if event.get(name) is not None)
            put(event, "vigil.timestamp_unreadable", f"{field}: {exc}")
            if field == "@timestamp":
                put(event, "vigil.original_timestamp", event["@timestamp"])
        event["@timestamp"] = stamp if stamp is not None else ctx.received_at.astimezone(UTC)
        if "event" in event and not isinstance(event["event"], dict):
            event["event_value"] = event.pop("event")  # a non-ECS "event" field; ECS needs the object
        if get(event, "event.dataset") is None:
            put(event, "event.dataset", "json")
        keep_shipped_original(event, raw, ctx)
        return event


def split_records(data: bytes) -> Iterator[bytes]:
    """A body of NDJSON lines or one JSON array, as one record per object.

    Array elements are re-encoded with orjson (the array is the transport, each element the record);
    an array that is not valid JSON is one record, so its parse failure says why.
    """
    body = data.lstrip()
    if body[:1] == b"[":
        try:
            items = orjson.loads(body)
        except orjson.JSONDecodeError:
            yield data
            return
        for item in items if isinstance(items, list) else [items]:
            yield orjson.dumps(item)
        return
    for line in data.splitlines():
        if line.strip():
            yield line

