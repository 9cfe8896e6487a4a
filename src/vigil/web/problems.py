"""Errors as ``application/problem+json`` for the API, as pages or a redirect to sign-in for the UI.

Every permission denial and every rejected credential is written to the audit trail here, in its own
transaction, since the request's own transaction is rolled back.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from vigil.accounts import service
from vigil.core import audit
from vigil.core.auth import Principal
from vigil.core.db import Scope
from vigil.core.errors import BadInput, Conflict, NotAuthenticated, PermissionDenied, Unavailable, VigilError
from vigil.web.deps import client_ip, database_of

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://vigil.invalid/problems/"


def wants_html(request: Request) -> bool:
    path = request.url.path
    return not (path.startswith("/api/") or path in {"/healthz", "/readyz", "/metrics"})


def problem(status: int, code: str, title: str, detail: str, request: Request, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": request.url.path,
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _audit_refusal(request: Request, exc: VigilError) -> None:
    principal: Principal | None = getattr(request.state, "principal", None) or getattr(
        request.state, "claimed_principal", None)
    action = "auth.denied" if isinstance(exc, PermissionDenied) else "auth.token"
    try:
        with database_of(request).transaction(Scope.system()) as session:
            root = service.root_unit_id(session)
            actor = audit.Actor(
                principal.user_id if principal else None,
                principal.username if principal else "anonymous",
                principal.unit_id if principal else root,
                client_ip(request),
            )
            audit.record(session, actor=actor, action=action, outcome=audit.Outcome.DENIED,
                         target_type="endpoint", target_id=f"{request.method} {request.url.path}",
                         details={"reason": exc.detail, "code": exc.code})
    except Exception:  # the refusal itself must still reach the caller
        log.exception("could not audit a refusal")


def _vigil_error_response(request: Request, exc: VigilError) -> Response:
    if isinstance(exc, PermissionDenied) or (
        isinstance(exc, NotAuthenticated) and exc.extra.get("credential")
    ):
        _audit_refusal(request, exc)
    if wants_html(request):
        if isinstance(exc, NotAuthenticated):
            target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
            return RedirectResponse(f"/login?next={target}", status_code=303)
        renderer = getattr(request.app.state, "render_error", None)
        if renderer is not None:
            page: Response = renderer(request, exc.status, exc.title, exc.detail)
            return page
    extra = {key: value for key, value in exc.extra.items() if key != "credential"}
    return problem(exc.status, exc.code, exc.title, exc.detail, request, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def vigil_error(request: Request, exc: VigilError) -> Response:
        # In a worker thread: auditing a refusal writes to the store, which must not block the loop.
        response: Response = await run_in_threadpool(_vigil_error_response, request, exc)
        return response

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> Response:
        # A uniqueness or reference check lost a race with another request; nothing was saved.
        log.info("refused a change that conflicts with stored records: %s", exc.orig)
        conflict = Conflict("the change conflicts with a record saved meanwhile (for example a name that was "
                            "just taken); nothing was saved: reload and try again")
        response: Response = await run_in_threadpool(_vigil_error_response, request, conflict)
        return response

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def unstorable_value(request: Request, exc: Exception) -> Response:
        # A value the schema let through but the store cannot hold (a number out of range, a NUL
        # character in text): the caller's input is at fault, and nothing was saved.
        log.info("refused a value the records store cannot hold on %s %s: %s", request.method, request.url.path,
                 exc)
        bad = BadInput("a value is out of range or contains characters that cannot be stored; nothing was saved")
        response: Response = await run_in_threadpool(_vigil_error_response, request, bad)
        return response

    @app.exception_handler(OperationalError)
    async def store_unavailable(request: Request, exc: OperationalError) -> Response:
        log.error("the records store failed on %s %s: %s", request.method, request.url.path, exc.orig)
        unavailable = Unavailable("the records store is not reachable or busy; nothing was saved: try again")
        response: Response = await run_in_threadpool(_vigil_error_response, request, unavailable)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": ".".join(str(part) for part in error["loc"] if part not in ("body", "query", "path")),
                "in": str(error["loc"][0]) if error["loc"] else "",
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        detail = "; ".join(f"{e['field'] or e['in']}: {e['message']}" for e in errors)
        if wants_html(request) and getattr(request.app.state, "render_error", None):
            page: Response = await run_in_threadpool(request.app.state.render_error, request, 422,
                                                     "Invalid input", detail)
            return page
        return problem(422, "bad-input", "Invalid input", detail, request, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large", 400: "bad-request"}
        code = codes.get(exc.status_code, f"http-{exc.status_code}")
        title = {404: "Not found", 405: "Method not allowed", 400: "Bad request",
                 413: "Request body too large"}.get(exc.status_code, "Error")
        if wants_html(request) and getattr(request.app.state, "render_error", None):
            page: Response = await run_in_threadpool(request.app.state.render_error, request, exc.status_code,
                                                     title, str(exc.detail))
            return page
        return problem(exc.status_code, code, title, str(exc.detail), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal-error", "Internal error",
                       "something went wrong on our side; the error is in the server log", request)
