"""STIX 2.1 (and 2.0) bundles, or a single STIX object, as indicators and entities.

A bundle is read twice from its seekable source, one object at a time (``jsonstream``), so that a
bundle of millions of objects is never held whole. Relationships may come after the objects they link,
so the first pass keeps only the small things (``StixObjects.learn``): each actor, campaign, malware…
by id (kind, name, ATT&CK ID), the relationships and report memberships that touch them, and the
bundle's marking definitions. The second pass (``StixObjects.items``) yields:

- for each ``indicator`` with a STIX pattern: one ``ParsedIndicator`` per value when the pattern is a
  list of values (``stix_patterns.SimplePattern``), else one of type ``stix-pattern`` holding the
  pattern; its confidence, validity, labels and indicator types (tags), kill-chain phases, TLP (from
  ``object_marking_refs``) and what it is related to (relationships in either direction, the reports
  that list it, and the actors those are ``attributed-to``);
- a ``ParsedEntity`` for each intrusion-set, threat-actor, campaign, malware, tool, report,
  attack-pattern and infrastructure;
- a ``ParsedIndicator`` for each observable (ipv4-addr, domain-name, url, file…) that a relationship
  links to a malware, infrastructure, intrusion-set or campaign;
- an ``ItemError`` with the object's position for each object that cannot be read (not an object, no
  type or id, an invalid pattern, a bad timestamp…), every other object still being read.

Revoked objects are skipped. Other object types (identity, vulnerability, observed-data…) yield nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar

import orjson

from vigil.core.errors import BadInput
from vigil.intel.feeds.jsonstream import DEFAULT_CHUNK_SIZE, JsonArrayReader, JsonStreamError
from vigil.intel.feeds.stix_patterns import ComplexPattern, PatternError, SimplePattern, compile_pattern
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

ENTITY_KINDS = frozenset({"intrusion-set", "threat-actor", "campaign", "malware", "tool", "report",
                          "attack-pattern", "infrastructure"})
# Observables worth an indicator when a relationship ties them to one of these.
LINKING_KINDS = frozenset({"malware", "infrastructure", "intrusion-set", "campaign"})
OBSERVABLE_KINDS = frozenset({"ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr", "file"})
ATTACK_SOURCES = frozenset({"mitre-attack", "mitre-ics-attack", "mitre-mobile-attack", "mitre-pre-attack"})

# The TLP marking definitions every STIX producer uses by id: TLP 1.0 (STIX 2.0 and 2.1) and TLP 2.0.
STANDARD_TLP = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "clear",  # TLP:WHITE
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "green",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "amber",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "red",
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
_HASH_TYPES = {"MD5": IndicatorType.MD5, "SHA1": IndicatorType.SHA1, "SHA256": IndicatorType.SHA256}


class _Malformed(ValueError):
    """An object that cannot be read; the message is the reason."""


def _kind_of(stix_id: str) -> str:
    """A STIX id is ``type--uuid``: its type without looking the object up."""
    return stix_id.partition("--")[0]


@dataclass
class StixObjects:
    """What one source's objects say about each other (pass 1), and the items of each object (pass 2)."""

    spec_version: str = "2.1"  # the bundle's, for STIX 2.0 objects that do not say theirs
    names: dict[str, Related] = field(default_factory=dict)  # entity id → how an indicator names it
    links: defaultdict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    attributed: defaultdict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    reports: defaultdict[str, dict[str, None]] = field(default_factory=lambda: defaultdict(dict))
    markings: dict[str, str] = field(default_factory=dict)  # marking-definition id → TLP level
    linked_observables: set[str] = field(default_factory=set)

    # --- pass 1 ------------------------------------------------------------------------------------

    def learn(self, obj: Any) -> None:
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or not isinstance(obj.get("id"), str):
            return  # reported in pass 2
        kind, stix_id = obj["type"], obj["id"]
        if kind in ENTITY_KINDS and isinstance(obj.get("name"), str):
            attack_ids = _attack_ids(obj)
            self.names[stix_id] = Related(kind, obj["name"], attack_ids[0] if attack_ids else stix_id)
        if kind == "relationship":
            self._learn_relationship(obj)
        elif kind == "report":
            for ref in _strings(obj, "object_refs"):
                if ref != stix_id:
                    self.reports[ref][stix_id] = None  # what the report lists is related to it, both ways
                    if _kind_of(ref) in ENTITY_KINDS:
                        self.links[stix_id][ref] = None
        elif kind == "marking-definition":
            level = _marking_level(obj)
            if level is not None:
                self.markings[stix_id] = level

    def _learn_relationship(self, obj: dict[str, Any]) -> None:
        source, target = obj.get("source_ref"), obj.get("target_ref")
        if not isinstance(source, str) or not isinstance(target, str):
            return
        source_kind, target_kind = _kind_of(source), _kind_of(target)
        if target_kind in ENTITY_KINDS:
            self.links[source][target] = None
        if source_kind in ENTITY_KINDS:
            self.links[target][source] = None
        if obj.get("relationship_type") == "attributed-to" and source_kind in ENTITY_KINDS:
            self.attributed[source][target] = None
        for observable, other in ((source, target_kind), (target, source_kind)):
            if _kind_of(observable) in OBSERVABLE_KINDS and other in LINKING_KINDS:
                self.linked_observables.add(observable)

    # --- pass 2 ------------------------------------------------------------------------------------

    def items(self, obj: Any, position: str) -> Iterator[ParsedItem]:
        if not isinstance(obj, dict):
            yield ItemError(position, f"not a STIX object but a JSON {type(obj).__name__}")
            return
        kind, stix_id = obj.get("type"), obj.get("id")
        if not isinstance(kind, str) or not kind:
            yield ItemError(position, "a STIX object without a type")
            return
        if not isinstance(stix_id, str) or not stix_id.startswith(kind + "--"):
            yield ItemError(position, f"a STIX {kind} object without a valid id ('{kind}--' and a UUID)")
            return
        position = f"{position} ({stix_id})"
        if obj.get("revoked") is True:
            return
        try:
            if kind == "indicator":
                yield from self._indicator(obj, position)
            elif kind in ENTITY_KINDS:
                yield self._entity(obj, position)
            elif stix_id in self.linked_observables:
                yield from self._observable(obj, position)
        except _Malformed as exc:
            yield ItemError(position, str(exc))

    def _indicator(self, obj: dict[str, Any], position: str) -> Iterator[ParsedItem]:
        text = obj.get("pattern")
        if not isinstance(text, str) or not text.strip():
            raise _Malformed("an indicator without a pattern")
        pattern_type = obj.get("pattern_type", "stix")
        if pattern_type != "stix":
            raise _Malformed(f"pattern_type {pattern_type!r}: only STIX patterns are read")
        details = self._details(obj, position)
        try:
            compiled = self._compile(text, obj)
        except PatternError as exc:
            raise _Malformed(f"invalid pattern {text!r}: {exc}") from None
        if isinstance(compiled, SimplePattern):
            for kind, value in compiled.indicators:
                yield ParsedIndicator(type=kind, value=value, pattern=text, **details)
            for _raw, reason in compiled.rejected:
                yield ItemError(position, reason)
            return
        try:
            value = normalise(IndicatorType.PATTERN, text)
        except InvalidValue as exc:
            raise _Malformed(f"pattern: {exc}") from None
        yield ParsedIndicator(type=IndicatorType.PATTERN, value=value, pattern=text, **details)

    def _compile(self, text: str, obj: dict[str, Any]) -> SimplePattern | ComplexPattern:
        stated = obj.get("spec_version")
        version = stated if stated in ("2.0", "2.1") else self.spec_version
        try:
            return compile_pattern(text, version=version)
        except PatternError as first:
            if stated is not None or version == "2.0":
                raise
            try:
                return compile_pattern(text, version="2.0")  # a 2.0 indicator that does not say so
            except PatternError:
                raise first from None

    def _details(self, obj: dict[str, Any], position: str) -> dict[str, Any]:
        """What every indicator of this object carries, beside its type, value and pattern."""
        confidence = obj.get("confidence")
        if confidence is not None and (not isinstance(confidence, int) or isinstance(confidence, bool)
                                       or not 0 <= confidence <= 100):
            raise _Malformed(f"confidence {confidence!r} is not a whole number from 0 to 100")
        tags = [tag for key in ("labels", "indicator_types") for tag in _strings(obj, key)]
        description = obj.get("description") or obj.get("name") or ""
        return {
            "confidence": confidence, "tlp": self._tlp(obj),
            "valid_from": _time(obj, "valid_from"), "valid_until": _time(obj, "valid_until"),
            "tags": tuple(dict.fromkeys(tags)), "kill_chain": _kill_chain(obj),
            "related": self._related(obj["id"]), "description": str(description),
            "external_id": obj["id"], "position": position,
        }

    def _entity(self, obj: dict[str, Any], position: str) -> ParsedEntity:
        kind, name = obj["type"], obj.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Malformed(f"a {kind} without a name")
        aliases = [alias for key in ("aliases", "x_mitre_aliases") for alias in _strings(obj, key) if alias != name]
        return ParsedEntity(
            kind=kind, name=name, external_id=obj["id"], description=str(obj.get("description") or ""),
            aliases=tuple(dict.fromkeys(aliases)), attack_ids=_attack_ids(obj),
            first_seen=_time(obj, "first_seen"), last_seen=_time(obj, "last_seen"),
            related=self._related(obj["id"]), position=position,
        )

    def _observable(self, obj: dict[str, Any], position: str) -> Iterator[ParsedItem]:
        details = {"tlp": self._tlp(obj), "related": self._related(obj["id"]), "external_id": obj["id"],
                   "position": position}
        for kind, raw in _observable_values(obj):
            try:
                yield ParsedIndicator(type=kind, value=normalise(kind, raw), **details)
            except InvalidValue as exc:
                yield ItemError(position, f"{obj['type']} {raw!r}: {exc}")

    def _tlp(self, obj: dict[str, Any]) -> str | None:
        levels = [STANDARD_TLP.get(ref) or self.markings.get(ref) for ref in _strings(obj, "object_marking_refs")]
        known = [level for level in levels if level is not None]
        return max(known, key=TLP_LEVELS.index) if known else None  # the most restrictive marking wins

    def _related(self, stix_id: str) -> tuple[Related, ...]:
        linked = dict(self.links.get(stix_id, {}))
        linked.update(self.reports.get(stix_id, {}))
        for other in list(linked):  # and the actors those are attributed to
            linked.update(self.attributed.get(other, {}))
        linked.pop(stix_id, None)
        return tuple(self.names.get(ref) or Related(_kind_of(ref), ref, ref) for ref in linked
                     if _kind_of(ref) in ENTITY_KINDS)


def _strings(obj: Mapping[str, Any], key: str) -> list[str]:
    values = obj.get(key)
    return [value for value in values if isinstance(value, str)] if isinstance(values, list) else []


def _time(obj: Mapping[str, Any], key: str) -> datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError
        head, dot, fraction = value.partition(".")
        if dot:  # STIX allows any precision; Python reads at most microseconds
            digits = len(fraction) - len(fraction.lstrip("0123456789"))
            value = f"{head}.{fraction[:min(digits, 6)]}{fraction[digits:]}"
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"{key} {value!r} is not a STIX timestamp (such as 2024-05-01T12:00:00Z)") from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _kill_chain(obj: Mapping[str, Any]) -> tuple[str, ...]:
    phases = obj.get("kill_chain_phases")
    if not isinstance(phases, list):
        return ()
    return tuple(f"{phase.get('kill_chain_name')}:{phase.get('phase_name')}" for phase in phases
                 if isinstance(phase, dict) and phase.get("kill_chain_name") and phase.get("phase_name"))


def _attack_ids(obj: Mapping[str, Any]) -> tuple[str, ...]:
    references = obj.get("external_references")
    if not isinstance(references, list):
        return ()
    return tuple(dict.fromkeys(
        str(reference["external_id"]) for reference in references
        if isinstance(reference, dict) and reference.get("source_name") in ATTACK_SOURCES
        and isinstance(reference.get("external_id"), str)))


def _marking_level(obj: Mapping[str, Any]) -> str | None:
    """The TLP level a marking definition of the bundle states, in STIX 2.0/2.1 or the TLP 2.0 extension."""
    candidates: list[Any] = []
    if obj.get("definition_type") == "tlp" and isinstance(obj.get("definition"), dict):
        candidates.append(obj["definition"].get("tlp"))
    extension = (obj.get("extensions") or {}).get(TLP2_EXTENSION) if isinstance(obj.get("extensions"), dict) else None
    if isinstance(extension, dict):
        candidates.append(extension.get("tlp_2_0"))
    for key in ("name", "definition_type"):
        candidates.append(obj.get(key))
    for candidate in candidates:
        if isinstance(candidate, str):
            level = candidate.lower().removeprefix("tlp:").strip()
            level = "clear" if level == "white" else level
            if level in TLP_LEVELS:
                return level
    return None


def _observable_values(obj: Mapping[str, Any]) -> list[tuple[IndicatorType, str]]:
    kind, value = obj.get("type"), obj.get("value")
    if kind == "file":
        hashes = obj.get("hashes")
        hashes = hashes if isinstance(hashes, dict) else {}
        found = [(_HASH_TYPES[name.upper().replace("-", "")], digest) for name, digest in hashes.items()
                 if name.upper().replace("-", "") in _HASH_TYPES and isinstance(digest, str)]
        if not found and isinstance(obj.get("name"), str):
            found.append((IndicatorType.FILENAME, obj["name"]))
        return found
    if not isinstance(value, str):
        return []
    simple = {"domain-name": IndicatorType.DOMAIN, "url": IndicatorType.URL, "email-addr": IndicatorType.EMAIL}
    if kind in simple:
        return [(simple[kind], value)]
    if "/" in value:
        return [(IndicatorType.CIDR, value)]
    return [(IndicatorType.IPV4 if kind == "ipv4-addr" else IndicatorType.IPV6, value)]


# --- the feed format -------------------------------------------------------------------------------------

class StixParser:
    """A STIX bundle or one STIX object, streamed in two passes (the source is spooled when not seekable).

    Option ``chunk_size``: bytes read at a time (default 64 KiB)."""

    name: ClassVar[str] = "stix"
    description: ClassVar[str] = "STIX 2.1 / 2.0 bundle or object: indicators, actors, campaigns, malware, reports"

    def parse(self, source: BinaryIO, options: Mapping[str, Any]) -> Iterator[ParsedItem]:
        chunk_size = options.get("chunk_size", DEFAULT_CHUNK_SIZE)
        if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
            raise BadInput(f"chunk_size must be a positive number of bytes, not {chunk_size!r}")
        with _seekable(source) as readable:
            start = readable.tell()
            objects = StixObjects()
            reader = JsonArrayReader(readable, chunk_size=chunk_size)
            try:
                for obj in reader.elements():
                    objects.learn(obj)
            except JsonStreamError as exc:
                raise BadInput(f"not a STIX bundle or object: {exc}") from None
            single = _shape(reader)
            version = reader.members.get("spec_version")
            objects.spec_version = version if version in ("2.0", "2.1") else "2.1"
            if single is not None:
                objects.learn(single)
                yield from objects.items(single, "object")
                return
            readable.seek(start)
            reader = JsonArrayReader(readable, chunk_size=chunk_size)
            try:
                for index, obj in enumerate(reader.elements()):
                    yield from objects.items(obj, f"objects[{index}]")
            except JsonStreamError as exc:  # the source changed between the passes
                raise BadInput(f"not a STIX bundle or object: {exc}") from None


def _shape(reader: JsonArrayReader) -> dict[str, Any] | None:
    """None for a bundle, the object itself for a single STIX object; ``BadInput`` for anything else."""
    if reader.top_level != "object":
        raise BadInput(f"not a STIX bundle or object: the document is a JSON {reader.top_level}, "
                       "not an object with a 'type'")
    kind, stix_id = reader.members.get("type"), reader.members.get("id")
    if reader.has_array and kind in (None, "bundle"):
        return None
    if kind == "bundle":
        if "objects" in reader.members:
            raise BadInput("not a STIX bundle: its 'objects' member is not an array")
        return None  # an empty bundle
    if isinstance(kind, str) and isinstance(stix_id, str) and stix_id.startswith(kind + "--"):
        return reader.members
    raise BadInput("not a STIX bundle or object: a JSON object without 'type' and 'id' (a STIX object) "
                   "or 'type': 'bundle' with an 'objects' array")


@contextmanager
def _seekable(source: BinaryIO) -> Iterator[BinaryIO]:
    """The source itself when it can seek, else a temporary copy of it (spooled to disk past 8 MiB)."""
    try:
        can_seek = source.seekable()
    except (AttributeError, ValueError):
        can_seek = False
    if can_seek:
        yield source
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as copy:
        shutil.copyfileobj(source, copy, DEFAULT_CHUNK_SIZE)
        copy.seek(0)
        yield copy  # type: ignore[misc]


def parse_objects(objects: Iterable[Any]) -> Iterator[ParsedItem]:
    """Items of STIX objects that come from elsewhere than a file (a TAXII collection, page by page):
    they are written to a temporary bundle as they come, then read like any bundle."""
    with tempfile.TemporaryFile() as bundle:
        bundle.write(b'{"type":"bundle","objects":[')
        for index, obj in enumerate(objects):
            try:
                encoded = orjson.dumps(obj)
            except TypeError:  # an integer beyond 64 bits, which orjson refuses and JSON allows
                encoded = json.dumps(obj).encode()
            bundle.write((b"," if index else b"") + encoded)
        bundle.write(b"]}")
        bundle.seek(0)
        yield from StixParser().parse(bundle, {})
