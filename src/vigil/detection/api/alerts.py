"""/api/v1/alerts and /api/v1/suppressions: the alert queue, its workflow, and the tuning loop.

Reading needs ``alerts:read`` and covers the units where the caller holds it; changing an alert or a
suppression needs ``alerts:write`` on its unit. Another unit's alert or suppression answers 404, like one
that does not exist. Every change is on the audit trail.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import Page, PageParams, page_params
from vigil.detection import alerts_service as service
from vigil.detection.models import Alert, Suppression
from vigil.detection.schemas_alerts import (
    AlertAssign,
    AlertBulk,
    AlertFilter,
    AlertGroup,
    AlertMatchingBulk,
    AlertPage,
    AlertRead,
    AlertSummary,
    AlertTransition,
    BulkResult,
    DetectionStatusRead,
    GroupBy,
    Level,
    MatchingBulkResult,
    Missable,
    NoisyRule,
    Origin,
    RuleAttribution,
    RuleStats,
    SuppressionCreate,
    SuppressionPage,
    SuppressionProposal,
    SuppressionRead,
    SuppressionUpdate,
)
from vigil.detection.workflow import AlertStatus, allowed_actions
from vigil.web.deps import SessionDep, context, require

router = APIRouter(tags=["alerts"])
AlertsReader = Annotated[Principal, Depends(require(Permission.ALERTS_READ))]
AlertsWriter = Annotated[Principal, Depends(require(Permission.ALERTS_WRITE))]
AlertId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="An alert's id.")]
SuppressionId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID, description="A suppression's id.")]
Pages = Annotated[PageParams, Depends(page_params)]
Short = Annotated[str, Query(max_length=255)]


def alert_read(session: Session, alert: Alert) -> AlertRead:
    """The alert with its rule's attribution and the transitions its state allows."""
    rule = service.rule_of(session, alert)
    return AlertRead.model_validate({
        **AlertSummary.model_validate(alert).model_dump(),
        "dedup_key": alert.dedup_key, "group_key": alert.group_key, "event": alert.event,
        "closed_at": alert.closed_at, "closed_by": alert.closed_by, "created_at": alert.created_at,
        "updated_at": alert.updated_at,
        "rule": RuleAttribution.model_validate(rule) if rule is not None else None,
        "actions": allowed_actions(alert.status),
    })


def suppression_read(row: Suppression) -> SuppressionRead:
    return SuppressionRead.model_validate({**SuppressionRead.model_validate(row).model_dump(),
                                           "active": service.is_active(row)})


def alert_filter(
    status: Annotated[list[AlertStatus], Query(description="Any of these states (repeat the parameter).")] = [],  # noqa: B006 - FastAPI copies defaults
    level: Annotated[list[Level], Query(description="Any of these levels (repeat the parameter).")] = [],  # noqa: B006
    rule: Short = "",
    host: Short = "",
    user: Short = "",
    origin: Origin | None = None,
    assignee_id: Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    q: Annotated[str, Query(max_length=200, description="Text in the title, rule id, host, user or address.")] = "",
    source_ip: Annotated[str, Query(max_length=64, description="The source address, exactly.")] = "",
    without: Annotated[list[Missable], Query(description="No value in these fields (repeat): "
                                                         "the group of alerts without a host...")] = [],  # noqa: B006
) -> AlertFilter:
    """The queue's filters, shared by the list, its groups and the step over a filter."""
    return AlertFilter(status=status, level=level, rule=rule, host=host, user=user, origin=origin,
                       assignee_id=assignee_id, since=since, until=until, q=q, source_ip=source_ip,
                       without=without)


Filters = Annotated[AlertFilter, Depends(alert_filter)]


@router.get("/api/v1/alerts")
def list_alerts(principal: AlertsReader, session: SessionDep, pages: Pages, filters: Filters) -> AlertPage:
    """The queue, newest activity first; every filter narrows it."""
    items, total = service.list_alerts(session, filters=filters, params=pages)
    return AlertPage(items=[AlertSummary.model_validate(item) for item in items], total=total, **pages.model_dump())


@router.get("/api/v1/alerts/groups")
def alert_groups(principal: AlertsReader, session: SessionDep, pages: Pages, filters: Filters,
                 by: Annotated[GroupBy, Query(description="host, user, rule or source_ip.")]) -> Page[AlertGroup]:
    """The alerts the filters select, grouped: per group its key, alerts, matches, highest level, newest
    activity and alerts per state; most alerts first. A group's ``filter`` added to the list's parameters
    selects its alerts (and POST /api/v1/alerts/bulk/matching steps them all)."""
    items, total = service.group_alerts(session, filters=filters, by=by, params=pages)
    return Page(items=items, total=total, **pages.model_dump())


@router.get("/api/v1/alerts/status")
def detection_status(request: Request, principal: AlertsReader) -> DetectionStatusRead:
    """Live detection in this server since it started: rules enabled, events seen, matches, alerts raised,
    deduplicated and suppressed, and the mean time per 1,000 events (figures of the whole pipeline)."""
    return service.detection_status(request.app.state.siem.consumers)


@router.get("/api/v1/alerts/stats/rules")
def rule_statistics(principal: AlertsReader, session: SessionDep, pages: Pages,
                    rule: Annotated[str | None, Query(max_length=200, description="Only this rule.")] = None,
                    ) -> Page[RuleStats]:
    """Per rule: hits, alerts, true and false positives, false-positive rate, last hit; most alerts first."""
    found = service.rule_stats(session, rule_uid=rule)
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@router.get("/api/v1/alerts/stats/noisiest")
def noisiest_rules(principal: AlertsReader, session: SessionDep, pages: Pages,
                   days: Annotated[int, Query(ge=1, le=366, description="The last N days.")] = 7,
                   ) -> Page[NoisyRule]:
    """The rules with the most alerts first seen in the last ``days`` days, with their false-positive rate."""
    found = service.noisiest_rules(session, days=days, limit=None)
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), **pages.model_dump())


@router.post("/api/v1/alerts/bulk")
def bulk_transition(data: AlertBulk, request: Request, principal: AlertsWriter, session: SessionDep) -> BulkResult:
    """One step for many alerts, all or none (409 naming each alert whose state refuses it)."""
    return service.bulk_transition(context(request, session, principal), data=data)


@router.post("/api/v1/alerts/bulk/matching")
def bulk_matching(data: AlertMatchingBulk, request: Request, principal: AlertsWriter,
                  session: SessionDep) -> MatchingBulkResult:
    """One step for every alert a filter selects (a group: one host's alerts...), at most 5,000; alerts
    whose state refuses it are skipped and listed. Only alerts of units where the caller may write."""
    return service.bulk_matching(context(request, session, principal), data=data)


@router.get("/api/v1/alerts/{alert_id}")
def read_alert(alert_id: AlertId, principal: AlertsReader, session: SessionDep) -> AlertRead:
    return alert_read(session, service.get_alert(session, alert_id))


@router.post("/api/v1/alerts/{alert_id}/transition")
def transition_alert(alert_id: AlertId, data: AlertTransition, request: Request, principal: AlertsWriter,
                     session: SessionDep) -> AlertRead:
    """acknowledge, escalate, close (with a resolution) or reopen; 409 when the alert's state refuses it."""
    alert = service.transition(context(request, session, principal), alert_id=alert_id, data=data)
    return alert_read(session, alert)


@router.post("/api/v1/alerts/{alert_id}/assign")
def assign_alert(alert_id: AlertId, data: AlertAssign, request: Request, principal: AlertsWriter,
                 session: SessionDep) -> AlertRead:
    alert = service.assign(context(request, session, principal), alert_id=alert_id, data=data)
    return alert_read(session, alert)


@router.get("/api/v1/alerts/{alert_id}/suppression")
def propose_suppression(
    alert_id: AlertId, principal: AlertsReader, session: SessionDep,
    field: Annotated[list[str], Query(description="Event fields to match (repeat); "
                                      "default: its host, user, process and source address.")] = [],  # noqa: B006
) -> SuppressionProposal:
    """A draft suppression for matches like this alert, to review and send to POST /api/v1/suppressions."""
    return service.suppression_from_alert(service.get_alert(session, alert_id), field)


@router.get("/api/v1/suppressions")
def list_suppressions(principal: AlertsReader, session: SessionDep, pages: Pages,
                      rule: Annotated[str | None, Query(max_length=200)] = None) -> SuppressionPage:
    items, total = service.list_suppressions(session, params=pages, rule_uid=rule)
    return SuppressionPage(items=[suppression_read(item) for item in items], total=total, **pages.model_dump())


@router.post("/api/v1/suppressions", status_code=status.HTTP_201_CREATED)
def create_suppression(data: SuppressionCreate, request: Request, principal: AlertsWriter,
                       session: SessionDep) -> SuppressionRead:
    return suppression_read(service.create_suppression(context(request, session, principal), data=data))


@router.get("/api/v1/suppressions/{suppression_id}")
def read_suppression(suppression_id: SuppressionId, principal: AlertsReader, session: SessionDep) -> SuppressionRead:
    return suppression_read(service.get_suppression(session, suppression_id))


@router.patch("/api/v1/suppressions/{suppression_id}")
def update_suppression(suppression_id: SuppressionId, data: SuppressionUpdate, request: Request,
                       principal: AlertsWriter, session: SessionDep) -> SuppressionRead:
    row = service.update_suppression(context(request, session, principal), suppression_id=suppression_id, data=data)
    return suppression_read(row)


@router.delete("/api/v1/suppressions/{suppression_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_suppression(suppression_id: SuppressionId, request: Request, principal: AlertsWriter,
                       session: SessionDep) -> None:
    service.delete_suppression(context(request, session, principal), suppression_id=suppression_id)

