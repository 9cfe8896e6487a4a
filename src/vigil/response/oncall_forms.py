"""The on-call pages' forms as text, and back: layers with participants by user name and restrictions written as
"Mon-Fri 09:00-18:00; Sat,Sun 22:00-06:00", policy levels with targets written as "alice, schedule:SOC primary".

The parsed values go through the same schemas as the API (``LayerIn``, ``LevelIn``), so both refuse alike.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from vigil.core.errors import BadInput
from vigil.response import oncall_service as service
from vigil.response.notifications.service import find_channel

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_DAY_INDEX = {name.lower(): index for index, name in enumerate(DAY_NAMES)}
_RESTRICTION = re.compile(r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")
SCHEDULE_PREFIX = "schedule:"
CHANNEL_PREFIX = "channel:"  # a notification channel the level pages through
LAYER_FIELDS = ("name", "participants", "rotation", "hours", "handoff", "start", "restrictions", "remove")
LEVEL_FIELDS = ("timeout", "targets", "remove")


def _days(text: str) -> list[int]:
    text = text.strip().lower()
    if text in {"daily", "every day", "all"}:
        return list(range(7))
    days: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        first, _, last = part.partition("-")
        if first[:3] not in _DAY_INDEX or (last and last.strip()[:3] not in _DAY_INDEX):
            raise ValueError(f"unknown day in {part!r}; write Mon, Tue, ... Sun, or a range such as Mon-Fri")
        a = _DAY_INDEX[first[:3]]
        b = _DAY_INDEX[last.strip()[:3]] if last else a
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return sorted(days)


def parse_restrictions(text: str) -> list[dict[str, Any]]:
    """ "Mon-Fri 09:00-18:00; daily 22:00-06:00" as restriction dicts; ValueError saying what is wrong."""
    found = []
    for part in (p for p in re.split(r"[;\n]", text) if p.strip()):
        match = _RESTRICTION.match(part)
        if match is None:
            raise ValueError("write a restriction as days and hours, such as Mon-Fri 09:00-18:00 "
                             f"(not {part.strip()!r})")
        found.append({"days": _days(match["days"]), "start": match["start"], "end": match["end"]})
    return found


def format_restrictions(restrictions: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for rule in restrictions:
        days = rule["days"]
        run = len(days) > 2 and days == list(range(days[0], days[-1] + 1))
        names = "daily" if len(days) == 7 else (
            f"{DAY_NAMES[days[0]]}-{DAY_NAMES[days[-1]]}" if run else ",".join(DAY_NAMES[d] for d in days))
        parts.append(f"{names} {str(rule['start'])[:5]}-{str(rule['end'])[:5]}")
    return "; ".join(parts)


def _names(text: str) -> list[str]:
    return [name for name in re.split(r"[\s,]+", text) if name]


def layer_rows(layers: Sequence[Mapping[str, Any]], names: Mapping[int, str]) -> list[dict[str, str]]:
    """A schedule's layers as the form's text fields."""
    return [{"name": str(layer["name"]),
             "participants": ", ".join(names.get(i, f"#{i}") for i in layer["participants"]),
             "rotation": str(layer["rotation"]), "hours": str(layer["hours"]), "handoff": str(layer["handoff"])[:5],
             "start": str(layer["start"]), "restrictions": format_restrictions(layer["restrictions"]), "remove": ""}
            for layer in layers]


def form_rows(form: Mapping[str, str], prefix: str, fields: Sequence[str], count: int) -> list[dict[str, str]]:
    return [{name: form.get(f"{prefix}{index}_{name}", "") for name in fields} for index in range(count)]


def layers_from_rows(session: Session, rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """The layer rows a form sent (empty and removed rows left out), users looked up by name."""
    layers = []
    for index, row in enumerate(rows):
        if row.get("remove") or not (row.get("name") or row.get("participants")):
            continue
        try:
            restrictions = parse_restrictions(row.get("restrictions", ""))
        except ValueError as exc:
            raise BadInput(str(exc), errors=[{"field": f"layer{index}_restrictions", "message": str(exc)}]) from exc
        participants = service.user_ids_by_name(session, _names(row.get("participants", "")),
                                                f"layer{index}_participants")
        layers.append({"name": row.get("name", ""), "participants": participants,
                       "rotation": row.get("rotation") or "weekly", "hours": row.get("hours") or 24,
                       "handoff": row.get("handoff") or "09:00", "start": row.get("start", ""),
                       "restrictions": restrictions})
    return layers


def level_rows(levels: Sequence[Mapping[str, Any]], users: Mapping[int, str],
               schedules: Mapping[int, str], channels: Mapping[int, str] | None = None) -> list[dict[str, str]]:
    rows = []
    for level in levels:
        targets = [users.get(t["id"], f"#{t['id']}") if t["kind"] == "user"
                   else SCHEDULE_PREFIX + schedules.get(t["id"], f"#{t['id']}") for t in level["targets"]]
        targets += [CHANNEL_PREFIX + (channels or {}).get(c, f"#{c}") for c in level.get("channel_ids") or []]
        rows.append({"timeout": str(level["timeout_minutes"]), "targets": ", ".join(targets), "remove": ""})
    return rows


def levels_from_rows(session: Session, rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    levels = []
    for index, row in enumerate(rows):
        if row.get("remove") or not row.get("targets", "").strip():
            continue
        targets: list[dict[str, Any]] = []
        channel_ids: list[int] = []
        for entry in (e.strip() for e in row["targets"].split(",") if e.strip()):
            if entry.lower().startswith(CHANNEL_PREFIX):
                channel_ids.append(find_channel(session, entry[len(CHANNEL_PREFIX):].strip()).id)
            elif entry.lower().startswith(SCHEDULE_PREFIX):
                schedule = service.schedule_by_name(session, entry[len(SCHEDULE_PREFIX):].strip())
                targets.append({"kind": "schedule", "id": schedule.id})
            else:
                user_id = service.user_ids_by_name(session, [entry], f"level{index}_targets")[0]
                targets.append({"kind": "user", "id": user_id})
        levels.append({"timeout_minutes": row.get("timeout") or 15, "targets": targets, "channel_ids": channel_ids})
    return levels
