"""What the incident domain tells the rest of Vigil (notifications, escalation, playbooks) through the bus."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.core.events import DomainEvent


@dataclass(frozen=True, kw_only=True)
class IncidentEvent(DomainEvent):
    incident_id: int
    ref: str
    severity: str
    type_key: str


@dataclass(frozen=True, kw_only=True)
class IncidentOpened(IncidentEvent):
    title: str
    source: str  # manual | alerts | grouping


@dataclass(frozen=True, kw_only=True)
class IncidentReclassified(IncidentEvent):
    """The severity or the type changed (playbooks whose trigger now matches may start)."""

    changed: tuple[str, ...] = field(default=())  # "severity", "type"


@dataclass(frozen=True, kw_only=True)
class IncidentAcknowledged(IncidentEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class IncidentPhaseChanged(IncidentEvent):
    from_phase: str
    to_phase: str
    move: str  # advance | return | close | reopen
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class IncidentSeverityChanged(IncidentEvent):
    previous: str  # the severity before; ``severity`` is the new one


@dataclass(frozen=True, kw_only=True)
class IncidentAssigned(IncidentEvent):
    owner_id: int | None
    team: str


@dataclass(frozen=True, kw_only=True)
class AlertsLinked(IncidentEvent):
    alert_ids: tuple[int, ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class UsersMentioned(IncidentEvent):
    comment_id: int
    user_ids: tuple[int, ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class PostMortemApproved(IncidentEvent):
    postmortem_id: int


@dataclass(frozen=True, kw_only=True)
class SlaWarning(IncidentEvent):
    metric: str  # acknowledge | contain | resolve
    due_at_iso: str


@dataclass(frozen=True, kw_only=True)
class SlaBreached(IncidentEvent):
    metric: str
    due_at_iso: str
