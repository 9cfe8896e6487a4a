"""Liveness, readiness, Prometheus metrics and the effective settings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from vigil import __version__
from vigil.core.auth import Permission, Principal
from vigil.web.deps import SessionDep, database_of, require, resolve_principal, settings_of

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """Ready: every store this process needs answers."""
    checks: dict[str, str] = {}
    try:
        with database_of(request).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["records"] = "ok"
    except Exception as exc:  # report, never raise: this is what a load balancer polls
        checks["records"] = f"unreachable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def _metrics_guard(request: Request, session: SessionDep) -> None:
    if settings_of(request).metrics_public:
        return
    principal = resolve_principal(request, session, csrf_token="")  # a GET: no CSRF token to check
    require(Permission.METRICS_READ)(principal, session)


@router.get("/metrics", dependencies=[Depends(_metrics_guard)])
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/settings")
def effective_settings(
    request: Request, principal: Annotated[Principal, Depends(require(Permission.SETTINGS_READ, everywhere=True))]
) -> dict[str, Any]:
    return settings_of(request).masked()
