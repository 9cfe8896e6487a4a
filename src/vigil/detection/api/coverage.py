"""/api/v1/coverage: ATT&CK coverage of the enabled rules and of the alerts of the last days, as JSON or as
an ATT&CK Navigator layer to download.

Reading needs ``rules:read`` (rules are platform-wide). Alerts count only in the units where the caller
holds ``alerts:read``: a security administrator, who reads rules but not alerts, sees rule coverage with
no alerts, and nobody sees the alerts of another unit.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from vigil.core.auth import Permission, Principal
from vigil.detection import coverage
from vigil.detection.coverage import CoverageReport
from vigil.web.deps import SessionDep, require

router = APIRouter(prefix="/api/v1/coverage", tags=["ATT&CK coverage"])
RulesReader = Annotated[Principal, Depends(require(Permission.RULES_READ))]
Days = Annotated[int, Query(ge=1, le=coverage.MAX_DAYS, description="Count the alerts of the last N days.")]
Platform = Annotated[str | None, Query(max_length=50, description="Only techniques of this ATT&CK platform "
                                                                  "(Windows, Linux, macOS, ...).")]


@router.get("")
def get_coverage(principal: RulesReader, session: SessionDep, days: Days = 30,
                 platform: Platform = None) -> CoverageReport:
    """Per tactic (in matrix order) every technique with its enabled rules and its alerts of the window;
    sub-techniques roll up to their technique; ids outside the ATT&CK data are listed in ``unknown``."""
    return coverage.viewer_report(session, principal, days=days, platform=platform)


@router.get("/navigator", response_class=JSONResponse)
def get_navigator_layer(principal: RulesReader, session: SessionDep, days: Days = 30,
                        platform: Platform = None) -> JSONResponse:
    """The same coverage as an ATT&CK Navigator layer (format 4.5, enterprise-attack), as a file to
    download: score = enabled rules; each technique's comment gives its rules and alerts."""
    report = coverage.viewer_report(session, principal, days=days, platform=platform)
    layer = coverage.navigator_layer(report)
    suffix = f"-{platform.lower().replace(' ', '-')}" if platform else ""
    filename = f"vigil-attack-coverage-{days}d{suffix}.json"
    return JSONResponse(layer, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
