"""Request and response shapes of incidents, their work (tasks, comments, timeline, observables, alerts), the
post-mortem, the SLA settings and figures, the metrics and the configuration tables (Pydantic v2)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigil.core.inputs import RecordId, Text
from vigil.core.pagination import Page

Severity = Literal["P1", "P2", "P3", "P4"]
SEVERITY_RANK: dict[str, int] = {severity: rank for rank, severity in enumerate(get_args(Severity), start=1)}
PhaseName = Literal["identify", "contain", "eradicate", "recover", "review", "closed"]
WorkPhase = Literal["identify", "contain", "eradicate", "recover", "review"]
SlaFilter = Literal["ok", "warning", "breached"]
Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
LongText = Annotated[Text, Field(max_length=20_000)]
MAX_ITEMS = 200


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Scope(Strict):
    """The scope of impact: affected assets, users, business lines and data, each a list of names."""

    affected_assets: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    affected_users: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    business_lines: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)
    affected_data: list[Item] = Field(default_factory=list, max_length=MAX_ITEMS)


class IncidentCreate(Strict):
    title: Title
    description: LongText = ""
    type: Annotated[str, Field(min_length=1, max_length=64, description="A key of the type taxonomy.")]
    severity: Severity
    cause: LongText = ""
    scope: Scope = Field(default_factory=Scope)
    unit_id: RecordId | None = Field(default=None, description="Default: the caller's own unit.")
    owner_id: RecordId | None = None
    team: Annotated[Text, Field(max_length=100)] = ""
    participants: list[RecordId] = Field(default_factory=list, max_length=MAX_ITEMS)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class IncidentUpdate(Strict):
    """Only the fields given change."""

    title: Title | None = None
    description: LongText | None = None
    type: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    severity: Severity | None = None
    cause: LongText | None = None
    scope: Scope | None = None
    participants: list[RecordId] | None = Field(default=None, max_length=MAX_ITEMS)
    tags: list[Tag] | None = Field(default=None, max_length=50)
    custom_fields: dict[str, Any] | None = None


class IncidentAssign(Strict):
    owner_id: RecordId | None = None
    team: Annotated[Text, Field(max_length=100)] = ""


class IncidentTransition(Strict):
    phase: PhaseName
    reason: LongText = ""


class IncidentFilter(Strict):
    phase: list[PhaseName] = Field(default_factory=list)
    status: Literal["open", "closed"] | None = None
    severity: list[Severity] = Field(default_factory=list)
    type: Annotated[str, Field(max_length=64)] = ""
    owner_id: RecordId | None = None
    team: Annotated[Text, Field(max_length=100)] = ""
    sla: SlaFilter | None = None
    q: Annotated[Text, Field(max_length=200)] = ""


class TypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    names: dict[str, str]
    enabled: bool
    position: int


class TypeCreate(Strict):
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    names: dict[Literal["en", "zh_CN"], Annotated[Text, Field(min_length=1, max_length=100)]]
    enabled: bool = True
    position: int = Field(default=100, ge=0, le=10_000)


class FieldDefinitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    label: str
    kind: str
    choices: list[str]
    required: bool


class FieldDefinitionCreate(Strict):
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,63}$")]
    label: Annotated[Text, Field(min_length=1, max_length=200)]
    kind: Literal["text", "number", "boolean", "choice", "date"]
    choices: list[Annotated[Text, Field(min_length=1, max_length=100)]] = Field(default_factory=list, max_length=100)
    required: bool = False


class UserRef(BaseModel):
    id: int
    username: str


class SlaFigureRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    target_minutes: int
    clock: str
    due_at: datetime
    done_at: datetime | None
    elapsed_minutes: float
    remaining_minutes: float | None
    used_ratio: float
    state: str


class IncidentSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    ref: str
    title: str
    type: str
    severity: str
    phase: str
    status: str
    unit_id: int
    owner: UserRef | None
    team: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    sla_state: str  # the worst running or final state of its three figures


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    template_id: int | None
    title: str
    description: str
    phase: str
    required: bool
    assignee_id: int | None
    status: str
    due_at: datetime | None
    done_by: str | None
    done_at: datetime | None
    created_by: str
    created_at: datetime


class TimelineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    actor: str
    at: datetime
    summary: str
    payload: dict[str, Any]


class CommentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    author: str
    body: str
    mentions: list[int]
    created_at: datetime


class ObservableRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    value: str
    description: str
    malicious: bool
    added_by: str
    added_at: datetime
    indicator_id: int | None = None  # the intel indicator of the same type and value, when the store holds one


class LinkedAlert(BaseModel):
    id: int
    title: str
    level: str
    status: str
    host: str | None
    user_name: str | None
    rule_uid: str
    linked_by: str
    linked_at: datetime


class PhaseSpanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    phase: str
    entered_at: datetime
    left_at: datetime | None
    entered_by: str


class PhaseTime(BaseModel):
    phase: str
    minutes: float


class StatusChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    from_phase: str | None
    to_phase: str | None
    actor: str
    at: datetime
    reason: str


class ActionItem(Strict):
    title: Title
    owner_id: RecordId | None = None
    due_at: AwareDatetime | None = None
    task_id: int | None = Field(default=None, description="Set when the approval turned it into a task.")


class PostMortemUpdate(Strict):
    summary: LongText | None = None
    timeline: LongText | None = None
    impact: LongText | None = None
    root_cause: LongText | None = None
    five_whys: list[Annotated[Text, Field(max_length=2000)]] | None = Field(default=None, max_length=5)
    went_well: LongText | None = None
    went_badly: LongText | None = None
    action_items: list[ActionItem] | None = Field(default=None, max_length=100)


class PostMortemReview(Strict):
    note: LongText = ""


class PostMortemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    incident_id: int
    status: str
    author: str
    summary: str
    timeline: str
    impact: str
    root_cause: str
    five_whys: list[str]
    went_well: str
    went_badly: str
    action_items: list[dict[str, Any]]
    submitted_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    review_note: str
    created_at: datetime
    updated_at: datetime
    kb_slug: str | None = None  # where it was published: the knowledge-base page, its version, the git commit
    kb_version: int | None = None
    git_commit: str | None = None
    published_at: datetime | None = None
    published_by: str | None = None


class IncidentRead(IncidentSummary):
    description: str
    cause: str
    scope: Scope
    participants: list[UserRef]
    custom_fields: dict[str, Any]
    source: str
    created_by: str
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    allowed_phases: list[str]
    sla: list[SlaFigureRead]
    phase_times: list[PhaseTime]
    phases: list[PhaseSpanRead]
    status_changes: list[StatusChangeRead]
    tasks: list[TaskRead]
    alerts: list[LinkedAlert]
    observables: list[ObservableRead]
    comments: list[CommentRead]
    timeline: list[TimelineRead]
    postmortem: PostMortemRead | None


IncidentPage = Page[IncidentSummary]


class TaskCreate(Strict):
    title: Title
    description: LongText = ""
    phase: WorkPhase | None = Field(default=None, description="Default: the incident's current phase.")
    required: bool = False
    assignee_id: RecordId | None = None
    due_at: AwareDatetime | None = None


class TaskUpdate(Strict):
    title: Title | None = None
    description: LongText | None = None
    required: bool | None = None
    assignee_id: RecordId | None = None
    due_at: AwareDatetime | None = None


class TaskTemplateCreate(Strict):
    type: Annotated[str, Field(max_length=64)] | None = Field(default=None, description="None: every type.")
    phase: WorkPhase
    title: Title
    description: LongText = ""
    required: bool = False
    position: int = Field(default=100, ge=0, le=10_000)


class TaskTemplateRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type_id: int | None
    phase: str
    title: str
    description: str
    required: bool
    position: int


class CommentCreate(Strict):
    body: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000)]


class TimelineCreate(Strict):
    summary: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    at: AwareDatetime | None = Field(default=None, description="When it happened; default: now.")


class ObservableCreate(Strict):
    type: Annotated[str, Field(max_length=20, description="An indicator type (ipv4, domain, sha256...); "
                                                          "default: guessed from the value.")] = ""
    value: Annotated[Text, Field(min_length=1, max_length=2048)]
    description: LongText = ""
    malicious: bool = False


class AlertIds(Strict):
    alert_ids: list[RecordId] = Field(min_length=1, max_length=500)


class EscalateAlerts(Strict):
    """Alerts to escalate: into an existing open incident (``incident_id``) or a new one (title, type...)."""

    alert_ids: list[RecordId] = Field(min_length=1, max_length=500)
    incident_id: RecordId | None = None
    title: Title | None = None
    type: Annotated[str, Field(max_length=64)] = "other"
    severity: Severity = "P3"


class SlaTargetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    severity: str
    acknowledge_minutes: int
    contain_minutes: int
    resolve_minutes: int
    clock: str
    updated_by: str
    updated_at: datetime


Minutes = Annotated[int, Field(ge=1, le=525_600)]


class SlaTargetUpdate(Strict):
    acknowledge_minutes: Minutes
    contain_minutes: Minutes
    resolve_minutes: Minutes
    clock: Literal["24x7", "business"]


class SlaCalendarRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timezone: str
    weekdays: list[int]
    day_start: str
    day_end: str
    warn_ratio: float
    updated_by: str
    updated_at: datetime


HHMM = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class SlaCalendarUpdate(Strict):
    timezone: Annotated[str, Field(min_length=1, max_length=64)]
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(min_length=1, max_length=7)
    day_start: HHMM
    day_end: HHMM
    warn_ratio: float = Field(gt=0, lt=1)


class GroupingRuleCreate(Strict):
    name: Annotated[Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    match_on: Literal["rule", "host", "user", "indicator"]
    window_minutes: Annotated[int, Field(ge=1, le=43_200)]
    min_level: Literal["informational", "low", "medium", "high", "critical"] = "high"
    type: Annotated[str, Field(max_length=64)] = "other"
    severity: Severity = "P3"
    enabled: bool = True
    position: int = Field(default=100, ge=0, le=10_000)


class GroupingRuleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    match_on: str
    window_minutes: int
    min_level: str
    type_key: str
    severity: str
    enabled: bool
    position: int
