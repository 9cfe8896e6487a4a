"""Windows events as JSON: the evtx_dump / ``evtx`` package shape, and Winlogbeat's ECS documents.

Both keep the native fields at the top level as SigmaHQ rules name them, and add ECS fields
(``windows_ecs.add_ecs``):

- from ``System``: ``Channel``, ``EventID`` (int; ``{"#text": 4624, "#attributes": {"Qualifiers": ..}}``
  too), ``Provider_Name``, ``Provider_Guid``, ``Computer``, ``EventRecordID``, ``Level``, ``Task``,
  ``Opcode``, ``Keywords``, ``Version``, ``TimeCreated_SystemTime``, ``Execution_ProcessID``,
  ``Execution_ThreadID``, ``Security_UserID``, ``Correlation_ActivityID`` (an element's attributes are
  ``<Element>_<Attribute>``, as Zircolite flattens them);
- every ``EventData`` field by its name (``Image``, ``CommandLine``, ``TargetUserName``, ...); a name
  with spaces (Defender's ``Threat Name``) also without them (``ThreatName``), as rules write it;
  unnamed ``<Data>``: one value is ``Data``; several are ``Data1``..``DataN`` and ``Data`` holds the
  list (a Sigma ``Data|contains`` then matches any element, as Hayabusa and Chainsaw do);
- ``UserData`` and ``ProcessingErrorData`` payloads flattened the same way (nested elements as
  ``Parent_Child``).

A native name that would overwrite a field already set (an ECS root such as ``event``, or a ``System``
field) is kept as ``EventData_<name>``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from vigil.siem.parsers.base import Event, ParseContext, ParseError, keep_original, put
from vigil.siem.parsers.jsoncommon import (
    as_int,
    expand_dotted,
    json_type,
    keep_shipped_original,
    load_object,
    to_utc,
)
from vigil.siem.parsers.windows_ecs import LEVEL_NUMBERS, RESERVED, add_ecs, dataset

ATTRIBUTES = "#attributes"
TEXT = "#text"
# Nested payload elements deeper than this stay one object (they are never that deep in real events).
MAX_DEPTH = 8


def text_of(value: Any) -> Any:
    """An element's value: ``{"#text": v, "#attributes": ...}`` is ``v``; anything else as it is."""
    if isinstance(value, dict) and TEXT in value:
        return value[TEXT]
    return value


def system_fields(system: dict[str, Any]) -> Event:
    native: Event = {}
    for name, value in system.items():
        if name.startswith("#"):
            continue
        if name.endswith("_attributes"):  # evtx_dump --separate-json-attributes
            if isinstance(value, dict):
                element = name[: -len("_attributes")]
                native.update({f"{element}_{attribute}": item for attribute, item in value.items()})
            continue
        if isinstance(value, dict):
            attributes = value.get(ATTRIBUTES)
            if isinstance(attributes, dict):
                native.update({f"{name}_{attribute}": item for attribute, item in attributes.items()})
            value = value.get(TEXT)
        if value is not None and not isinstance(value, dict | list):
            native[name] = value
    event_id = as_int(native.get("EventID"))
    if event_id is None:
        raise ParseError(f"System.EventID is {native.get('EventID')!r}, not a number")
    native["EventID"] = event_id
    # Events saved from ETW traces have <Channel/> empty: the field is still there (null), as in the XML.
    native.setdefault("Channel", None)
    record_id = as_int(native.get("EventRecordID"))
    if record_id is not None:
        native["EventRecordID"] = record_id
    return native


def payload_fields(payload: Any, prefix: str = "", depth: int = 0) -> Event:
    """EventData / UserData / ProcessingErrorData children as flat native fields."""
    fields: Event = {}
    if isinstance(payload, list):
        payload = {"Data": payload}
    if not isinstance(payload, dict):
        if payload is not None and payload != "":
            fields[prefix or "Data"] = payload
        return fields
    for name, value in payload.items():
        if name.startswith("#") or name.endswith("_attributes"):
            continue
        if name == "Data" and not prefix:
            fields.update(_data_fields(value))
            continue
        value = text_of(value)
        key = f"{prefix}{name}"
        if isinstance(value, dict) and depth < MAX_DEPTH:
            fields.update(payload_fields(value, f"{key}_", depth + 1))
        else:
            fields[key] = value
    if depth == 0:
        # Defender writes "Threat Name"; SigmaHQ rules (as Hayabusa and Chainsaw read them) say ThreatName.
        for key in [key for key in fields if " " in key]:
            fields.setdefault(key.replace(" ", ""), fields[key])
    return fields


def _data_fields(value: Any) -> Event:
    """``<Data>`` elements: named ones (``{"#attributes": {"Name": n}, "#text": v}``) by name, others unnamed."""
    items = value if isinstance(value, list) else [value]
    named: Event = {}
    unnamed: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            attributes = item.get(ATTRIBUTES)
            name = attributes.get("Name") if isinstance(attributes, dict) else item.get("@Name")
            if isinstance(name, str) and name:
                named[name] = item.get(TEXT)
                continue
        text = text_of(item)
        unnamed.extend(text if isinstance(text, list) else [text])
    if len(unnamed) == 1:
        named["Data"] = unnamed[0]
    elif unnamed:
        named["Data"] = unnamed
        named.update({f"Data{index}": item for index, item in enumerate(unnamed, 1)})
    return named


def add_native(event: Event, fields: Event) -> None:
    for name, value in fields.items():
        event[f"EventData_{name}" if name in event or name in RESERVED else name] = value


class WindowsJsonParser:
    name: ClassVar[str] = "windows_json"
    description: ClassVar[str] = "Windows events as JSON in evtx_dump's shape ({\"Event\": {\"System\": ...}})"

    def sniff(self, sample: bytes) -> bool:
        head = sample.lstrip()[:1]
        return head == b"{" and b'"Event"' in sample and b'"System"' in sample and b'"EventID"' in sample

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        document = load_object(raw)
        root = document.get("Event")
        system = root.get("System") if isinstance(root, dict) else None
        if not isinstance(root, dict) or not isinstance(system, dict):
            raise ParseError("not a Windows event: no Event.System object")
        native = system_fields(system)
        stamp = native.get("TimeCreated_SystemTime")
        if stamp is None:
            raise ParseError("not a Windows event: no System.TimeCreated SystemTime")
        event: Event = {"@timestamp": _utc(stamp, ctx)}
        rendering = root.get("RenderingInfo")
        if isinstance(rendering, dict) and isinstance(text_of(rendering.get("Message")), str):
            event["message"] = text_of(rendering["Message"])
        fields = dict(native)
        for section in ("EventData", "UserData", "ProcessingErrorData"):
            body = root.get(section)
            if section == "UserData" and isinstance(body, dict):
                # UserData holds one element (e.g. LogFileCleared) whose children are the fields.
                extracted: Event = {}
                for name, child in body.items():
                    if not name.startswith("#"):
                        extracted.update(payload_fields(child))
            else:
                extracted = payload_fields(body)
            for key, value in extracted.items():
                fields[f"EventData_{key}" if key in fields else key] = value
        add_native(event, fields)
        add_ecs(event)
        keep_original(event, raw, ctx)
        return event


class WinlogbeatParser:
    name: ClassVar[str] = "winlogbeat"
    description: ClassVar[str] = "Windows events shipped by Winlogbeat (ECS documents with winlog.*)"

    def sniff(self, sample: bytes) -> bool:
        return sample.lstrip()[:1] == b"{" and b'"winlog' in sample and b"event_id" in sample

    def parse_one(self, raw: bytes, ctx: ParseContext) -> Event:
        document = expand_dotted(load_object(raw))
        winlog = document.get("winlog")
        if not isinstance(winlog, dict):
            raise ParseError(f"not a Winlogbeat event: winlog is {json_type(winlog)}, not an object")
        event_id = as_int(winlog.get("event_id"))
        if event_id is None:
            raise ParseError(f"not a Winlogbeat event: winlog.event_id is {winlog.get('event_id')!r}")
        if "@timestamp" not in document:
            raise ParseError("not a Winlogbeat event: no @timestamp")
        document["@timestamp"] = _utc(document["@timestamp"], ctx)
        if "event" in document and not isinstance(document["event"], dict):
            raise ParseError(f"not a Winlogbeat event: event is {json_type(document['event'])}, not an object")
        native: Event = {
            "Channel": winlog.get("channel"),
            "EventID": event_id,
            "Provider_Name": winlog.get("provider_name"),
            "Provider_Guid": winlog.get("provider_guid"),
            "Computer": winlog.get("computer_name"),
            "EventRecordID": as_int(winlog.get("record_id")),
            "Task": winlog.get("task"),
            "Opcode": winlog.get("opcode"),
            "Keywords": winlog.get("keywords"),
            "Version": winlog.get("version"),
        }
        level = document.get("log", {}).get("level") if isinstance(document.get("log"), dict) else None
        if isinstance(level, str) and level.lower() in LEVEL_NUMBERS:
            native["Level"] = LEVEL_NUMBERS[level.lower()]
        process = winlog.get("process")
        if isinstance(process, dict):
            native["Execution_ProcessID"] = process.get("pid")
            thread = process.get("thread")
            native["Execution_ThreadID"] = thread.get("id") if isinstance(thread, dict) else None
        native = {key: value for key, value in native.items() if value is not None}
        for section in ("event_data", "user_data"):
            for key, value in payload_fields(winlog.get(section)).items():
                native.setdefault(key, value)
        add_native(document, native)
        document["event"] = {**document.get("event", {})}
        put(document, "event.module", "windows")
        put(document, "event.dataset", dataset(native.get("Channel"), native.get("Provider_Name")))
        add_ecs(document)
        keep_shipped_original(document, raw, ctx)
        return document


def _utc(value: Any, ctx: ParseContext) -> datetime:
    try:
        return to_utc(value, ctx.timezone)
    except ParseError as exc:
        raise ParseError(f"not a Windows event time: {exc}") from None
