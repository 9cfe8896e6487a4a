"""The paging of new incidents on the escalation policies page: per severity of the caller's unit, the policy an
incident starts and the channels told that it opened (``paging_service``). Changing needs ``incidents:write``."""

from __future__ import annotations

from typing import Annotated, Any, get_args

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from vigil.core.auth import Permission, Principal
from vigil.core.errors import BadInput, Conflict, NotFound, PermissionDenied
from vigil.incidents.schemas import Severity
from vigil.response import oncall_service
from vigil.response import paging_service as service
from vigil.response.notifications import service as notifications
from vigil.response.paging_service import PagingSet
from vigil.web.deps import SessionDep, context
from vigil.web.templating import FormDep, PageRoute, page_guard, redirect

Writer = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_WRITE))]
SEVERITIES: tuple[str, ...] = get_args(Severity)
REFUSED = (BadInput, Conflict, NotFound, PermissionDenied)

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def paging_context(session: Session) -> dict[str, Any]:
    """What the policies page's paging section shows: the rows with names, and the choices of the form."""
    policies = {p.id: p.name for p in session.scalars(oncall_service.policies_query())}
    channels = {c.id: c.name for c in notifications.list_channels(session)}
    rows = [{"severity": r.severity, "unit_id": r.unit_id, "policy": policies.get(r.policy_id or 0, ""),
             "channels": [channels.get(c, f"#{c}") for c in r.channel_ids]} for r in service.list_rules(session)]
    return {"rows": rows, "severities": SEVERITIES, "policies": sorted(policies.items(), key=lambda p: p[1]),
            "channels": sorted(channels.items(), key=lambda c: c[1])}


def _ids(values: list[Any]) -> list[int]:
    return [int(v) for v in values if isinstance(v, str) and v.isdigit()]


@router.post("/oncall/paging")
def set_paging(request: Request, principal: Writer, session: SessionDep, form: FormDep) -> Response:
    severity = str(form.get("severity") or "")
    policy = str(form.get("policy_id") or "")
    try:
        if severity not in SEVERITIES:
            raise BadInput("choose a severity, P1 to P4")
        with session.begin_nested():
            service.set_rule(context(request, session, principal), severity=severity,  # type: ignore[arg-type]
                             data=PagingSet(policy_id=int(policy) if policy.isdigit() else None,
                                            channel_ids=_ids(form.getlist("channel_ids"))))
    except REFUSED as exc:
        return redirect(f"/oncall/policies?paging=refused&reason={exc.status}#paging")
    return redirect("/oncall/policies?paging=saved#paging")


@router.post("/oncall/paging/{severity}/delete")
def delete_paging(severity: Annotated[Severity, Path()], request: Request, principal: Writer,
                  session: SessionDep) -> Response:
    try:
        with session.begin_nested():
            service.delete_rule(context(request, session, principal), severity=severity)
    except REFUSED:
        return redirect("/oncall/policies?paging=refused#paging")
    return redirect("/oncall/policies?paging=removed#paging")
