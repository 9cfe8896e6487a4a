"""AlienVault OTX: one pulse (as ``GET /api/v1/pulses/{id}`` or the "Download JSON" button gives it), a
page of pulses (``{"results": [...]}`` from ``/api/v1/pulses/subscribed``), or a page of one pulse's
indicators (``/api/v1/pulses/{id}/indicators``).

A pulse becomes a ``report`` entity; its adversary an ``intrusion-set``, its malware families ``malware``
and its ATT&CK IDs ``attack-pattern`` entities, all of which its indicators relate to. The pulse's
tags and TLP go on every indicator. An indicator's ``created`` is its first sighting, ``expiration``
the end of its validity; an inactive one (``is_active`` 0) is left out. Indicator types Vigil does not
match (``Mutex``, ``CVE``, ``YARA``, ``FileHash-PEHASH``, …) are skipped and counted on the returned
items (``OtxItems.skipped_types``); a ``FilePath`` gives its file name, a ``URI`` is kept when it is a
whole URL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import StreamedItems
from vigil.intel.feeds.tabular import parse_time, tlp_level
from vigil.intel.indicators import (
    IndicatorType,
    InvalidValue,
    ItemError,
    ParsedEntity,
    ParsedIndicator,
    ParsedItem,
    Related,
    normalise,
)

_TYPES = {
    "IPv4": IndicatorType.IPV4, "IPv6": IndicatorType.IPV6, "CIDR": IndicatorType.CIDR,
    "domain": IndicatorType.DOMAIN, "hostname": IndicatorType.HOSTNAME, "URL": IndicatorType.URL,
    "URI": IndicatorType.URL, "FileHash-MD5": IndicatorType.MD5, "FileHash-SHA1": IndicatorType.SHA1,
    "FileHash-SHA256": IndicatorType.SHA256, "email": IndicatorType.EMAIL, "FilePath": IndicatorType.FILENAME,
}
_ATTACK_ID = re.compile(r"(?:T\d{4}(?:\.\d{3})?|TA\d{4})")
_NAMED_ATTACK_ID = re.compile(r"(?P<id>" + _ATTACK_ID.pattern + r")\s+-\s+(?P<name>.+)")


class OtxItems(StreamedItems):
    """The items of an OTX source, streamed; ``skipped_types`` also counts URIs that are only a path, and
    ``inactive`` the indicators OTX marks inactive (after iteration)."""

    def __init__(self, produce: Callable[[OtxItems], Iterator[ParsedItem]]) -> None:
        super().__init__()
        self.inactive = 0
        self._items = produce(self)


class OtxParser:
    """AlienVault OTX pulses, one or a page of them."""

    name: ClassVar[str] = "otx"
    description: ClassVar[str] = ("AlienVault OTX pulse JSON, or a page of subscribed pulses: indicators with the "
                                  "pulse's tags, TLP, adversary, malware families and ATT&CK techniques")

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> OtxItems:
        if options:
            raise BadInput(f"bad otx feed options: the format takes none (got {', '.join(sorted(options))})",
                           errors=[{"field": name, "message": "unknown option"} for name in sorted(options)])
        try:
            document = orjson.loads(source.read())
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"the source is not JSON: {exc}") from None
        pulses = _pulses(document)

        def produce(items: OtxItems) -> Iterator[ParsedItem]:
            seen: set[tuple[str, str]] = set()
            for where, indicators_at, pulse in pulses:
                yield from _pulse_items(pulse, where, indicators_at, items, seen)
        return OtxItems(produce)


def _pulses(document: Any) -> list[tuple[str, str, Any]]:
    """(where the pulse is, where its indicators are, pulse) for each pulse; a page of bare indicators is
    one pulse without a name."""
    if isinstance(document, Mapping) and isinstance(document.get("results"), list):
        results = document["results"]
        if results and all(isinstance(item, Mapping) and "indicator" in item for item in results):
            return [("results", "results", {"indicators": results})]
        return [(f"results[{index}]", f"results[{index}].indicators", pulse) for index, pulse in enumerate(results)]
    if isinstance(document, Mapping) and isinstance(document.get("indicators"), list):
        return [("pulse", "indicators", document)]
    raise BadInput('not an OTX pulse: expected a pulse (name, indicators) or a page {"results": [...]}')


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise InvalidValue(f"{what}: {exc}") from None


def _names(values: Any) -> list[tuple[str, str]]:
    """(name, id) of each entry of a list of strings or of {"id", "display_name", "name"} objects."""
    names: list[tuple[str, str]] = []
    for value in values if isinstance(values, list) else []:
        if isinstance(value, Mapping):
            identifier = str(value.get("id") or "").strip()
            name = str(value.get("name") or value.get("display_name") or identifier).strip()
            names.append((name, identifier))
        elif isinstance(value, str) and value.strip():
            names.append((value.strip(), ""))
    return [(name, identifier) for name, identifier in names if name]


def _technique(name: str, identifier: str) -> tuple[str, str]:
    """An ATT&CK entry as OTX writes it (``"T1566"``, ``"T1566 - Phishing"``, or an object) → (name, ID)."""
    named = _NAMED_ATTACK_ID.fullmatch(name)
    if named is not None:
        return named["name"], named["id"]
    if _ATTACK_ID.fullmatch(name):
        return name, name
    return name, identifier if _ATTACK_ID.fullmatch(identifier) else ""


def _pulse_items(pulse: Any, where: str, indicators_at: str, counts: OtxItems,
                 seen: set[tuple[str, str]]) -> Iterator[ParsedItem]:
    if not isinstance(pulse, Mapping):
        yield ItemError(where, "not an OTX pulse (an object with name and indicators)")
        return
    try:
        created, modified = _time(pulse.get("created"), "created"), _time(pulse.get("modified"), "modified")
    except InvalidValue as exc:
        yield ItemError(where, str(exc))
        created = modified = None
    related: list[Related] = []
    entities: list[ParsedEntity] = []
    adversary = str(pulse.get("adversary") or "").strip()
    if adversary:
        related.append(Related("intrusion-set", adversary))
        entities.append(ParsedEntity("intrusion-set", adversary, position=f"{where}.adversary"))
    for index, (name, _identifier) in enumerate(_names(pulse.get("malware_families"))):
        related.append(Related("malware", name))
        entities.append(ParsedEntity("malware", name, position=f"{where}.malware_families[{index}]"))
    for index, (raw_name, raw_id) in enumerate(_names(pulse.get("attack_ids"))):
        name, attack_id = _technique(raw_name, raw_id)
        related.append(Related("attack-pattern", name, attack_id))
        entities.append(ParsedEntity("attack-pattern", name, attack_id, attack_ids=(attack_id,) * bool(attack_id),
                                     position=f"{where}.attack_ids[{index}]"))
    for entity in entities:
        if (entity.kind, entity.name) not in seen:
            seen.add((entity.kind, entity.name))
            yield entity
    name = str(pulse.get("name") or "").strip()
    if name:
        report = Related("report", name, str(pulse.get("id") or ""))
        yield ParsedEntity("report", name, report.external_id, description=str(pulse.get("description") or ""),
                           first_seen=created, last_seen=modified, related=tuple(related), position=where)
        related.insert(0, report)
    tags = tuple(dict.fromkeys(str(tag).strip() for tag in pulse.get("tags") or () if str(tag).strip()))
    tlp = tlp_level(str(pulse.get("tlp") or pulse.get("TLP") or ""))
    for index, indicator in enumerate(pulse.get("indicators") or ()):
        position = f"{indicators_at}[{index}]"
        item = _indicator(indicator, position, counts, tags=tags, tlp=tlp, related=tuple(related))
        if item is not None:
            yield item


def _indicator(indicator: Any, position: str, counts: OtxItems, *, tags: tuple[str, ...], tlp: str | None,
               related: tuple[Related, ...]) -> ParsedItem | None:
    if not isinstance(indicator, Mapping):
        return ItemError(position, "not an OTX indicator (an object with indicator and type)")
    otx_type = str(indicator.get("type") or "")
    kind = _TYPES.get(otx_type)
    if kind is None:
        counts.skipped_types[otx_type or "(no type)"] += 1
        return None
    if indicator.get("is_active", 1) in (0, False, "0"):
        counts.inactive += 1
        return None
    raw = indicator.get("indicator")
    if not isinstance(raw, str) or not raw.strip():
        return ItemError(position, f"{otx_type} indicator without a value")
    if otx_type == "FilePath":
        raw = re.split(r"[\\/]", raw.strip())[-1]  # C:\Users\x\evil.exe or /tmp/evil: the name is matched
    elif otx_type == "URI" and "://" not in raw:
        counts.skipped_types["URI (a path, not a URL)"] += 1
        return None
    try:
        value = normalise(kind, raw)
        first_seen = _time(indicator.get("created"), "created")
        valid_until = _time(indicator.get("expiration"), "expiration")
    except InvalidValue as exc:
        return ItemError(position, f"{otx_type}: {exc}")
    description = str(indicator.get("description") or indicator.get("title") or "").strip()
    return ParsedIndicator(kind, value, tlp=tlp, valid_until=valid_until, first_seen=first_seen, tags=tags,
                           related=related, description=description,
                           external_id=str(indicator.get("id") or ""), position=position)
