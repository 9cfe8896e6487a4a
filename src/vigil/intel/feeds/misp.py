"""MISP: a single event (``{"Event": {...}}`` or its bare fields), a REST search response
(``{"response": [...]}``) and the MISP feed format (``manifest.json`` and one ``<uuid>.json`` per event).

Each event becomes a ``report`` entity named by its ``info``; each galaxy cluster (threat actor,
intrusion set, malware, tool, ATT&CK technique) an entity too, with the ATT&CK ID its value names
(``Spearphishing Attachment - T1566.001``). Attributes, the event's own and those inside its objects,
become indicators related to the report and the event's galaxies: only those flagged ``to_ids`` unless
the ``all_attributes`` option is true (the others are context, not detections). Attribute types Vigil
does not match (``regkey``, ``text``, ``link``, …) are skipped and counted on the returned items
(``MispItems.skipped_types``), not reported as errors. Proposals (``ShadowAttribute``) are ignored.

Tags: ``tlp:*`` gives the TLP (``white`` is TLP 2.0 ``clear``; an attribute's own TLP wins, the
strictest when there are several), ``osint:certainty="93"`` the confidence, ``misp-galaxy:*`` a related
entity, MISP's internal ``workflow:*`` nothing; every other tag is kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from vigil.core.errors import BadInput
from vigil.intel.feeds.base import StreamedItems
from vigil.intel.feeds.tabular import parse_time, tlp_level
from vigil.intel.indicators import (
    TLP_LEVELS,
    IndicatorType,
    InvalidValue,
    ItemError,
    ParsedEntity,
    ParsedIndicator,
    ParsedItem,
    Related,
    normalise,
)

_IP = "ip"  # an address or a network: its type is read from the value
_SINGLE: dict[str, IndicatorType | str] = {
    "ip-src": _IP, "ip-dst": _IP, "domain": IndicatorType.DOMAIN, "hostname": IndicatorType.HOSTNAME,
    "url": IndicatorType.URL, "md5": IndicatorType.MD5, "sha1": IndicatorType.SHA1, "sha256": IndicatorType.SHA256,
    "filename": IndicatorType.FILENAME, "email": IndicatorType.EMAIL, "email-src": IndicatorType.EMAIL,
    "email-dst": IndicatorType.EMAIL,
}
# value "a|b": the types of a and b (None: a part that is not an indicator, such as a port)
_COMPOSITE: dict[str, tuple[IndicatorType | str, IndicatorType | str | None]] = {
    "ip-src|port": (_IP, None), "ip-dst|port": (_IP, None), "hostname|port": (IndicatorType.HOSTNAME, None),
    "domain|ip": (IndicatorType.DOMAIN, _IP),
    "filename|md5": (IndicatorType.FILENAME, IndicatorType.MD5),
    "filename|sha1": (IndicatorType.FILENAME, IndicatorType.SHA1),
    "filename|sha256": (IndicatorType.FILENAME, IndicatorType.SHA256),
    "malware-sample": (IndicatorType.FILENAME, IndicatorType.MD5),  # "name.exe|<md5>", the sample attached
}
_GALAXY_KINDS = {
    "threat-actor": "intrusion-set", "microsoft-activity-group": "intrusion-set", "mitre-ics-groups": "intrusion-set",
    "mitre-ics-techniques": "attack-pattern", "exploit-kit": "malware", "ransomware": "malware",
    "banker": "malware", "botnet": "malware", "rat": "malware", "stealer": "malware", "backdoor": "malware",
    "android": "malware", "malpedia": "malware", "mitre-ics-software": "malware",
}
_KIND_SUFFIXES = (("intrusion-set", "intrusion-set"), ("attack-pattern", "attack-pattern"), ("malware", "malware"),
                  ("tool", "tool"), ("campaign", "campaign"))
_ATTACK_ID = re.compile(r"(?:T\d{4}(?:\.\d{3})?|TA\d{4}|G\d{4}|S\d{4}|M\d{4}|C\d{4})")
_NAME_AND_ATTACK_ID = re.compile(r"(?P<name>.+?)\s+-\s+(?P<id>" + _ATTACK_ID.pattern + r")")
_GALAXY_TAG = re.compile(r'misp-galaxy:(?P<type>[^=]+)="(?P<value>.*)"')
_CERTAINTY_TAG = re.compile(r'osint:certainty="(?P<value>\d{1,3})"')
_OPTIONS = frozenset({"all_attributes"})


def attack_name(value: str) -> tuple[str, str]:
    """``"Spearphishing Attachment - T1566.001"`` → ``("Spearphishing Attachment", "T1566.001")``; a value
    naming no ATT&CK ID comes back whole with an empty ID."""
    found = _NAME_AND_ATTACK_ID.fullmatch(value.strip())
    return (found["name"], found["id"]) if found else (value.strip(), "")


def galaxy_kind(galaxy_type: str) -> str | None:
    """The entity kind of a MISP galaxy (``mitre-enterprise-attack-intrusion-set`` → ``intrusion-set``), or
    None for galaxies that describe no actor, malware, tool or technique (sectors, countries, …)."""
    kind = _GALAXY_KINDS.get(galaxy_type)
    if kind is None:
        kind = next((kind for suffix, kind in _KIND_SUFFIXES if galaxy_type.endswith(suffix)), None)
    return kind


class MispItems(StreamedItems):
    """The items of a MISP source, streamed; besides ``skipped_types``, ``not_for_ids`` counts the attributes
    not flagged ``to_ids`` (after iteration)."""

    def __init__(self, produce: Callable[[MispItems], Iterator[ParsedItem]]) -> None:
        super().__init__()
        self.not_for_ids = 0
        self._items = produce(self)


def _options(options: Mapping[str, Any]) -> bool:
    problems = [{"field": name, "message": "unknown option; known: all_attributes"} for name in options
                if name not in _OPTIONS]
    everything = options.get("all_attributes", False) is True
    if not isinstance(options.get("all_attributes", False), bool):
        problems.append({"field": "all_attributes", "message": "true or false"})
    if problems:
        raise BadInput("bad misp feed options: " + "; ".join(f"{p['field']}: {p['message']}" for p in problems),
                       errors=problems)
    return everything


def _load(data: bytes, what: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"{what} is not JSON: {exc}") from None


def _events(document: Any) -> list[tuple[str, Any]]:
    """(position, event) for each event of a MISP document; ``BadInput`` when it holds none."""
    if isinstance(document, Mapping) and "response" in document:
        document = document["response"]
    if isinstance(document, list) and any(isinstance(item, Mapping) for item in document):
        return [(f"Event[{index}]", item.get("Event", item) if isinstance(item, Mapping) else item)
                for index, item in enumerate(document)]
    if isinstance(document, Mapping):
        if isinstance(document.get("Event"), Mapping):
            return [("Event[0]", document["Event"])]
        if any(key in document for key in ("Attribute", "Object", "info")):
            return [("Event[0]", document)]
        if document and all(isinstance(entry, Mapping) and "info" in entry for entry in document.values()):
            raise BadInput("this is a MISP feed's manifest.json: read the feed with misp_feed(), which opens "
                           "each <uuid>.json it lists")
    raise BadInput('not a MISP event: expected {"Event": {...}}, {"response": [...]} or an event\'s fields '
                   "(info, Attribute, Object)")


def load_manifest(source: BinaryIO) -> dict[str, Any]:
    """A MISP feed's ``manifest.json``: event uuid → summary (info, date, timestamp, Tag, Orgc)."""
    manifest = _load(source.read(), "the manifest")
    if not isinstance(manifest, dict) or not all(isinstance(entry, dict) for entry in manifest.values()):
        raise BadInput("not a MISP feed manifest: expected an object of event uuid → event summary")
    return manifest


class MispParser:
    """MISP events in any of their JSON forms (one event, a search response); ``misp_feed`` reads a feed."""

    name: ClassVar[str] = "misp"
    description: ClassVar[str] = ("MISP event JSON or REST search response: attributes flagged for IDS, "
                                  "objects, tags, TLP and galaxies (actors, malware, ATT&CK techniques)")

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> MispItems:
        everything = _options(options)
        events = _events(_load(source.read(), "the source"))

        def produce(items: MispItems) -> Iterator[ParsedItem]:
            for position, event in events:
                yield from _EventReader(position, everything, items).items(event)
        return MispItems(produce)


def misp_feed(manifest: Mapping[str, Any], open_event: Callable[[str], BinaryIO],
              options: Mapping[str, Any] | None = None) -> MispItems:
    """The items of a MISP feed: each event the manifest lists, read through ``open_event("<uuid>.json")``
    (a file in the feed's folder or a download under its URL; it is closed after reading). An event that
    cannot be opened or read is an ``ItemError`` naming its file, and the others are read. To read only
    new or changed events, pass the manifest entries whose ``timestamp`` changed."""
    if not isinstance(manifest, Mapping):
        raise BadInput("not a MISP feed manifest: expected an object of event uuid → event summary")
    everything = _options(options or {})

    def produce(items: MispItems) -> Iterator[ParsedItem]:
        for uuid in manifest:
            name = f"{uuid}.json"
            try:
                with open_event(name) as handle:
                    events = _events(_load(handle.read(), name))
            except OSError as exc:
                yield ItemError(name, f"cannot open the event: {exc.strerror or exc}")
                continue
            except BadInput as exc:
                yield ItemError(name, exc.detail)
                continue
            for position, event in events:
                yield from _EventReader(f"{name}: {position}", everything, items).items(event)
    return MispItems(produce)


@dataclass
class _Context:
    """What an event (or an attribute, over its event's) says about its indicators."""

    tags: tuple[str, ...] = ()
    tlp: str | None = None
    confidence: int | None = None
    related: tuple[Related, ...] = ()
    entities: list[ParsedEntity] = field(default_factory=list)


def _flag(value: Any) -> bool:
    return value is True or value in (1, "1", "true", "True")


def _time(value: Any, what: str) -> datetime | None:
    if value in (None, "", "0", 0):
        return None
    try:
        return parse_time(str(value))
    except ValueError as exc:
        raise InvalidValue(f"{what}: {exc}") from None


def _strictest(levels: list[str]) -> str | None:
    return max(levels, key=TLP_LEVELS.index) if levels else None


class _EventReader:
    """The items of one event; ``position`` is where the event is (``Event[0]``, ``<uuid>.json: Event[0]``)."""

    def __init__(self, position: str, everything: bool, items: MispItems) -> None:
        self.position = position
        self.everything = everything
        self.counts = items
        self.seen_entities: set[tuple[str, str]] = set()

    def items(self, event: Any) -> Iterator[ParsedItem]:
        if not isinstance(event, Mapping):
            yield ItemError(self.position, "not a MISP event (an object with info, Attribute, Object)")
            return
        context = self._context(event, self.position, _Context())
        info = str(event.get("info") or "").strip()
        yield from context.entities
        if info:
            report = Related("report", info, str(event.get("uuid") or ""))
            try:
                published = _time(event.get("date"), "date")
            except InvalidValue:
                published = None
            yield ParsedEntity("report", info, report.external_id, first_seen=published, related=context.related,
                               position=self.position)
            context.related = (report, *context.related)
        for index, attribute in enumerate(_list(event.get("Attribute"))):
            yield from self._attribute(attribute, f"{self.position}.Attribute[{index}]", context, None)
        for number, misp_object in enumerate(_list(event.get("Object"))):
            where = f"{self.position}.Object[{number}]"
            if not isinstance(misp_object, Mapping):
                yield ItemError(where, "not a MISP object (an object with Attribute)")
                continue
            if _flag(misp_object.get("deleted")):
                continue
            for index, attribute in enumerate(_list(misp_object.get("Attribute"))):
                yield from self._attribute(attribute, f"{where}.Attribute[{index}]", context, misp_object)

    def _context(self, holder: Mapping[str, Any], position: str, outer: _Context) -> _Context:
        """Tags and galaxies of an event or an attribute, over what ``outer`` (its event) says."""
        tags: list[str] = list(outer.tags)
        levels: list[str] = []
        confidence = outer.confidence
        related: list[Related] = list(outer.related)
        entities: list[ParsedEntity] = []
        for index, galaxy in enumerate(_list(holder.get("Galaxy"))):
            if not isinstance(galaxy, Mapping):
                continue
            for number, cluster in enumerate(_list(galaxy.get("GalaxyCluster"))):
                if isinstance(cluster, Mapping):
                    self._cluster(cluster, str(galaxy.get("type") or ""),
                                  f"{position}.Galaxy[{index}].GalaxyCluster[{number}]", related, entities, tags)
        for index, tag in enumerate(_list(holder.get("Tag"))):
            name = str(tag.get("name") if isinstance(tag, Mapping) else tag or "").strip()
            if not name or name.startswith("workflow:"):
                continue
            if name.lower().startswith("tlp:"):
                level = tlp_level(name)
                levels.extend([level] if level else [])
                continue
            certainty = _CERTAINTY_TAG.fullmatch(name)
            if certainty is not None and int(certainty["value"]) <= 100:
                confidence = int(certainty["value"])
                continue
            galaxy_tag = _GALAXY_TAG.fullmatch(name)
            if galaxy_tag is not None:
                cluster = {"type": galaxy_tag["type"], "value": galaxy_tag["value"], "tag_name": name}
                self._cluster(cluster, galaxy_tag["type"], f"{position}.Tag[{index}]", related, entities, tags)
                continue
            tags.append(name)
        return _Context(tuple(dict.fromkeys(tags)), _strictest(levels) or outer.tlp, confidence,
                        tuple(dict.fromkeys(related)), entities)

    def _cluster(self, cluster: Mapping[str, Any], galaxy_type: str, position: str, related: list[Related],
                 entities: list[ParsedEntity], tags: list[str]) -> None:
        """One galaxy cluster (or ``misp-galaxy:`` tag) into a Related and, the first time, an entity."""
        galaxy_type = str(cluster.get("type") or galaxy_type)
        kind = galaxy_kind(galaxy_type)
        value = str(cluster.get("value") or "").strip()
        if not value:
            return
        if kind is None:  # a sector, a country, …: context for people, kept as a tag
            tags.append(str(cluster.get("tag_name") or f'misp-galaxy:{galaxy_type}="{value}"'))
            return
        name, attack_id = attack_name(value)
        meta = cluster.get("meta")
        meta = meta if isinstance(meta, Mapping) else {}
        attack_ids = tuple(dict.fromkeys(
            [attack_id] * bool(attack_id)
            + [str(ref) for ref in _list(meta.get("external_id")) if _ATTACK_ID.fullmatch(str(ref))]))
        external_id = attack_ids[0] if attack_ids else str(cluster.get("uuid") or "")
        if any(known.kind == kind and known.name == name for known in related):
            return  # a galaxy's cluster and its misp-galaxy tag: the cluster, which has more, came first
        related.append(Related(kind, name, external_id))
        if (kind, name) in self.seen_entities:
            return
        self.seen_entities.add((kind, name))
        aliases = tuple(str(alias) for alias in _list(meta.get("synonyms")) if str(alias) != name)
        entities.append(ParsedEntity(kind, name, external_id, description=str(cluster.get("description") or ""),
                                     aliases=aliases, attack_ids=attack_ids, position=position))

    def _attribute(self, attribute: Any, position: str, event: _Context,
                   misp_object: Mapping[str, Any] | None) -> Iterator[ParsedItem]:
        if not isinstance(attribute, Mapping):
            yield ItemError(position, "not a MISP attribute (an object with type and value)")
            return
        if _flag(attribute.get("deleted")):
            return
        misp_type = str(attribute.get("type") or "")
        kinds: tuple[IndicatorType | str, IndicatorType | str | None] | None
        single = _SINGLE.get(misp_type)
        kinds = (single, None) if single is not None else _COMPOSITE.get(misp_type)
        if kinds is None:
            self.counts.skipped_types[misp_type or "(no type)"] += 1
            return
        if not self.everything and not _flag(attribute.get("to_ids")):
            self.counts.not_for_ids += 1
            return
        raw = attribute.get("value")
        if not isinstance(raw, str) or not raw.strip():
            yield ItemError(position, f"{misp_type} attribute without a value")
            return
        parts = [raw] if single is not None else list(raw.rpartition("|")[::2])
        if len(parts) == 2 and not raw.count("|"):
            yield ItemError(position, f"{misp_type} {raw!r} is not two values separated by '|'")
            return
        try:
            context = self._context(attribute, position, event) if "Tag" in attribute or "Galaxy" in attribute \
                else event
            outer = misp_object or {}
            times = {key: _time(attribute.get(key) or outer.get(key), key.replace("_", " "))
                     for key in ("first_seen", "last_seen")}
            valid_from = _time(attribute.get("timestamp"), "timestamp")
        except InvalidValue as exc:
            yield ItemError(position, str(exc))
            return
        if context is not event:
            yield from context.entities  # the attribute's own galaxies (each entity is given once)
        description = str(attribute.get("comment") or outer.get("comment") or "").strip()
        for part, kind in zip(parts, kinds, strict=False):  # a single value has one part
            if kind is None:
                continue
            try:
                indicator_type, value = _normalised(kind, part)
            except InvalidValue as exc:
                yield ItemError(position, f"{misp_type}: {exc}")
                continue
            yield ParsedIndicator(indicator_type, value, confidence=context.confidence, tlp=context.tlp,
                                  valid_from=valid_from, first_seen=times["first_seen"],
                                  last_seen=times["last_seen"], tags=context.tags, related=context.related,
                                  description=description, external_id=str(attribute.get("uuid") or ""),
                                  position=position)


def _normalised(kind: IndicatorType | str, raw: str) -> tuple[IndicatorType, str]:
    if kind == _IP:
        text = raw.strip()
        kind = IndicatorType.CIDR if "/" in text else IndicatorType.IPV6 if ":" in text else IndicatorType.IPV4
    indicator_type = IndicatorType(kind)
    return indicator_type, normalise(indicator_type, raw)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
