"""Request and response shapes of the alert queue, suppressions and per-rule statistics (Pydantic v2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from vigil.core.inputs import RecordId, Text
from vigil.detection.workflow import AlertAction, AlertStatus, Resolution

LEVELS = ("informational", "low", "medium", "high", "critical")
ORIGINS = ("sigma", "correlation", "ioc", "hunt", "health")
# The operators of suppression conditions (vigil.detection.alerts.SUPPRESSION_OPS; a test keeps them equal).
SuppressionOp = Literal["equals", "contains", "startswith", "endswith", "cidr", "exists"]
Level = Literal["informational", "low", "medium", "high", "critical"]
Origin = Literal["sigma", "correlation", "ioc", "hunt", "health"]
# What the queue groups by; "rule" is the rule's id, the others the alert's fields of that name.
GroupBy = Literal["host", "user", "rule", "source_ip"]
GROUP_BYS = ("host", "user", "rule", "source_ip")
# Fields an alert may lack: a group of alerts without a host (user, source address) is selected by ``without``.
Missable = Literal["host", "user", "source_ip"]
MAX_BULK = 500
MAX_MATCHING_BULK = 5000  # alerts one step over a filter (a group) may change
MAX_CONDITIONS = 20


# --- the queue -------------------------------------------------------------------------------------


class AlertFilter(BaseModel):
    """Which alerts to list; every field narrows, an empty one does not."""

    model_config = ConfigDict(extra="forbid")

    status: list[AlertStatus] = Field(default_factory=list, description="Any of these states.")
    level: list[Level] = Field(default_factory=list, description="Any of these levels.")
    rule: Text = Field(default="", max_length=200, description="The rule's id (Sigma id), exactly.")
    host: Text = Field(default="", max_length=255, description="The host, exactly (case-insensitive).")
    user: Text = Field(default="", max_length=255, description="The user name, exactly (case-insensitive).")
    origin: Origin | None = None
    assignee_id: RecordId | None = None
    since: AwareDatetime | None = Field(default=None, description="Seen at or after (last seen).")
    until: AwareDatetime | None = Field(default=None, description="Seen before (first seen).")
    q: Text = Field(default="", max_length=200,
                    description="Text in the title, rule id, host, user or source address.")
    source_ip: Text = Field(default="", max_length=64, description="The source address, exactly.")
    without: list[Missable] = Field(default_factory=list,
                                    description="Alerts with no value in these fields (e.g. no host).")
    raised_before: AwareDatetime | None = Field(
        default=None, description="Raised (created) at or before: leaves out alerts raised after a page was shown.")


class RuleAttribution(BaseModel):
    """The rule behind an alert, with the attribution the Detection Rule License asks for."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    rule_uid: str
    title: str
    level: str
    effective_level: str
    status: str | None
    description: str
    author: str
    references: list[str]
    falsepositives: list[str]
    tags: list[str]


class AlertSummary(BaseModel):
    """One row of the queue."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    rule_id: int | None
    rule_uid: str
    title: str
    level: str
    origin: str
    status: str
    resolution: str | None
    host: str | None
    user_name: str | None
    source_ip: str | None
    event_source: str
    techniques: list[str]
    count: int
    first_seen: datetime
    last_seen: datetime
    assignee_id: int | None
    incident_id: int | None


class AlertRead(AlertSummary):
    """One alert in full: the matching event, the rule (when it is still known) and what may be done next."""

    dedup_key: str
    group_key: str
    event: dict[str, Any]
    closed_at: datetime | None
    closed_by: str | None
    created_at: datetime
    updated_at: datetime
    rule: RuleAttribution | None = None
    actions: list[AlertAction] = Field(default_factory=list, description="Transitions allowed from its state.")


class AlertPage(BaseModel):
    items: list[AlertSummary]
    total: int
    limit: int
    offset: int


class AlertTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: AlertAction
    resolution: Resolution | None = Field(default=None, description="Required with close.")
    comment: Text = Field(default="", max_length=2000, description="Why; kept on the audit trail.")


class AlertBulk(AlertTransition):
    ids: list[RecordId] = Field(min_length=1, max_length=MAX_BULK)


class BulkResult(BaseModel):
    changed: list[int] = Field(description="Alerts moved to the new state.")
    unchanged: list[int] = Field(description="Alerts already in that state (and resolution), left as they were.")


class AlertMatchingBulk(AlertTransition):
    """One step for every alert the filter selects (a group of the queue), at most ``MAX_MATCHING_BULK``."""

    filter: AlertFilter = Field(description="The alerts, as the list selects them; at least one filter.")


class MatchingBulkResult(BulkResult):
    skipped: list[int] = Field(description="Alerts whose state refuses the step (e.g. closed as a true positive, "
                                           "when closing as a false positive), left as they were.")


class AlertGroup(BaseModel):
    """One group of the queue: the alerts sharing a host, user, rule or source address."""

    key: str | None = Field(description="The host, user, rule id or address; null: alerts without one.")
    label: str = Field(description="What to show: the key, or the rule's title when grouped by rule.")
    alerts: int
    matches: int = Field(description="Matches folded into these alerts (the sum of their counts).")
    level: str = Field(description="The highest level among them.")
    last_seen: datetime = Field(description="The newest last seen among them.")
    statuses: dict[str, int] = Field(description="Alerts per state (states with none left out).")
    filter: dict[str, str] = Field(description="The list parameter that selects this group "
                                               "(e.g. {\"host\": \"WS01\"} or {\"without\": \"host\"}).")


class DetectionStatusRead(BaseModel):
    """Live detection in this server process, since it started (every unit's events: a pipeline figure)."""

    running: bool = Field(description="Whether the pipeline has a live detection consumer.")
    rules: int = Field(default=0, description="Rules enabled.")
    rules_version: str = ""
    correlation_rules: int = Field(default=0, description="Correlation rules enabled.")
    correlation_version: str = ""
    events: int = Field(default=0, description="Events seen.")
    matches: int = 0
    raised: int = Field(default=0, description="Alerts raised.")
    deduplicated: int = Field(default=0, description="Matches folded into an open alert.")
    suppressed: int = Field(default=0, description="Matches a suppression silenced.")
    seconds: float = Field(default=0.0, description="Time spent matching and recording.")
    ms_per_1000_events: float | None = Field(default=None, description="Mean milliseconds per 1,000 events; "
                                                                        "null before the first event.")


class AlertAssign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: RecordId | None = Field(description="The user; null removes the assignee.")


# --- suppressions ----------------------------------------------------------------------------------


class Condition(BaseModel):
    """One field test of a suppression; all of a suppression's conditions must hold."""

    model_config = ConfigDict(extra="forbid")

    field: Text = Field(min_length=1, max_length=200, description="Event field: a top-level key or a dotted path.")
    op: SuppressionOp = "equals"
    value: Text = Field(default="", max_length=1000, description="Compared case-insensitively; unused by exists.")


class SuppressionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule_uid: Text | None = Field(default=None, max_length=64, description="The rule's id; null: every rule.")
    conditions: list[Condition] = Field(min_length=1, max_length=MAX_CONDITIONS)
    reason: Text = Field(min_length=1, max_length=2000)
    expires_at: AwareDatetime | None = Field(default=None, description="Stops applying then; null: never.")
    enabled: bool = True
    unit_id: RecordId | None = Field(default=None, description="Unit whose alerts it suppresses; default: yours.")


class SuppressionUpdate(BaseModel):
    """Only the fields given change; ``expires_at: null`` makes it permanent."""

    model_config = ConfigDict(extra="forbid")

    conditions: list[Condition] | None = Field(default=None, min_length=1, max_length=MAX_CONDITIONS)
    reason: Text | None = Field(default=None, min_length=1, max_length=2000)
    expires_at: AwareDatetime | None = None
    enabled: bool | None = None


class SuppressionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    unit_id: int
    rule_uid: str | None
    conditions: list[Condition]
    reason: str
    author: str
    expires_at: datetime | None
    enabled: bool
    hits: int
    last_hit_at: datetime | None
    created_at: datetime
    active: bool = Field(default=False, description="Enabled and not expired: it applies now.")


class SuppressionPage(BaseModel):
    items: list[SuppressionRead]
    total: int
    limit: int
    offset: int


class SuppressionProposal(BaseModel):
    """A suppression drafted from an alert: its rule and unit, and conditions taken from its event."""

    rule_uid: str | None
    unit_id: int
    conditions: list[Condition]
    reason: str = ""


# --- statistics ------------------------------------------------------------------------------------


class RuleStats(BaseModel):
    """One rule's figures. ``hits`` and ``last_hit_at`` are the rule's own counters (every unit); the
    alert figures count the alerts of the caller's units."""

    rule_uid: str
    rule_id: int | None
    title: str
    level: str
    hits: int
    last_hit_at: datetime | None
    alerts: int
    events: int = Field(description="Matches folded into those alerts (the sum of their counts).")
    open: int
    true_positives: int
    false_positives: int
    false_positive_rate: float | None = Field(description="False positives among resolved alerts; null: none.")
    last_seen: datetime | None


class NoisyRule(RuleStats):
    days: int
