"""The ATT&CK coverage page: the Enterprise matrix as a heat map of enabled rules and alerts, a window of
days, a platform filter, the rules of each covered technique, and the tags outside the ATT&CK data."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from vigil.core.auth import Permission, Principal
from vigil.detection import coverage
from vigil.detection.attack import attack_data
from vigil.web.deps import SessionDep
from vigil.web.templating import PageRoute, page_guard, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
RulesReader = Annotated[Principal, Depends(page_guard(Permission.RULES_READ))]
DAY_CHOICES = (1, 7, 30, 90, 180, 365)
RULES_SHOWN = 25  # per technique; the rule list filtered by technique has them all


@router.get("/detection/coverage")
def coverage_page(request: Request, principal: RulesReader, session: SessionDep,
                  days: Annotated[int, Query(ge=1, le=coverage.MAX_DAYS)] = 30,
                  platform: Annotated[str, Query(max_length=50)] = "") -> HTMLResponse:
    platforms = attack_data().platforms()
    chosen = platform if platform in platforms else None
    report = coverage.viewer_report(session, principal, days=days, platform=chosen)
    query = {"days": days, **({"platform": chosen} if chosen else {})}
    return render(request, "detection/coverage.html", {
        "report": report,
        # Each covered or alerted technique once (a technique of two tactics is in two columns).
        "details": list({t.id: t for tactic in report.tactics for t in tactic.techniques
                         if t.rules or t.alerts}.values()),
        "days": days,
        "day_choices": sorted({*DAY_CHOICES, days}),
        "platform": chosen or "",
        "platforms": platforms,
        "layer_url": "/api/v1/coverage/navigator?" + urlencode(query),
        "json_url": "/api/v1/coverage?" + urlencode(query),
        "highest": coverage.most_rules(report.tactics),
        "heat": coverage.heat_level,
        "gradient": coverage.GRADIENT,
        "gap_colour": coverage.GAP_COLOUR,
        "alert_colour": coverage.ALERT_COLOUR,
        "rules_shown": RULES_SHOWN,
        "reads_alerts": bool(principal.units_for(Permission.ALERTS_READ)),
    })
