"""The FastAPI application: API routers, UI pages, middleware and error handling."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from vigil import __version__
from vigil.accounts import api as accounts_api
from vigil.accounts import views as accounts_views
from vigil.audit import api as audit_api
from vigil.audit import views as audit_views
from vigil.core.config import Settings, get_settings
from vigil.core.db import Database
from vigil.detection import api as detection_api
from vigil.detection import hunts_service
from vigil.detection import views as detection_views
from vigil.detection.source_health import SilentSourceWatch
from vigil.incidents import api as incidents_api
from vigil.incidents import evidence_api as incidents_evidence_api
from vigil.incidents import report_api
from vigil.incidents import views as incidents_views
from vigil.incidents import work_views as incidents_work_views
from vigil.incidents.clock import IncidentClock
from vigil.intel import api as intel_api
from vigil.intel import views as intel_views
from vigil.intel.runtime import Intel, intel_for
from vigil.kb import api as kb_api
from vigil.kb import views as kb_views
from vigil.response import oncall_api, oncall_views, paging_api, paging_views
from vigil.response.actions import api as actions_api
from vigil.response.actions import views as actions_views
from vigil.response.notifications import api as notifications_api
from vigil.response.notifications import views as notifications_views
from vigil.response.oncall_runtime import EscalationRunner
from vigil.response.paging import ChannelNotify, IncidentPaging
from vigil.response.playbooks import api as playbooks_api
from vigil.response.playbooks import views as playbooks_views
from vigil.response.playbooks.runtime import ResponseRunner
from vigil.siem import api as siem_api
from vigil.siem import views as siem_views
from vigil.siem.runtime import ReceiverFactory, Siem
from vigil.web import problems, system_api, templating, views
from vigil.web.middleware import BodyLimit, SecurityHeadersAndMetrics


def create_app(settings: Settings | None = None, database: Database | None = None, *,
               receivers: Sequence[ReceiverFactory] = ()) -> FastAPI:
    """The app; ``receivers`` (syslog listeners) run beside it, as `vigil serve` asks."""
    return attach(build_app(), settings or get_settings(), database, receivers=receivers)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The background work of `vigil serve` beside the requests: the SIEM's pipeline and receivers, source
    health, intel pulls, escalations and paging, the incident clock, playbooks and rollbacks."""
    state = app.state
    siem: Siem = state.siem
    await run_in_threadpool(hunts_service.fail_interrupted, state.db)
    await run_in_threadpool(siem.start, state.receivers)
    health = SilentSourceWatch(state.db, siem, state.settings)
    health.start()
    intel: Intel = state.intel
    intel.start()
    escalations: EscalationRunner = state.escalations
    escalations.start()
    state.incident_paging.start()
    incident_clock = IncidentClock(state.db)
    incident_clock.start()
    response_runner: ResponseRunner = state.response_runner
    response_runner.start()
    try:
        yield
    finally:
        response_runner.stop()
        incident_clock.stop()
        state.incident_paging.stop()
        escalations.stop()
        health.stop()
        intel.stop()
        await run_in_threadpool(siem.stop)


def build_app() -> FastAPI:
    """The routes, pages, middleware and error handling, without settings or stores: ``attach`` gives them.
    An app resolves every route's dependencies on its first request (about half a second), so the test suite
    builds one and attaches each test's settings and store to it."""
    app = FastAPI(
        title="Vigil",
        version=__version__,
        description="Vigil: an open-source Security Operations Center platform.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(system_api.router)
    app.include_router(accounts_api.router)
    app.include_router(audit_api.router)
    for router in [*siem_api.routers, *detection_api.routers, *intel_api.routers]:
        app.include_router(router)
    for router in oncall_api.routers:
        app.include_router(router)
    app.include_router(paging_api.router)
    app.include_router(kb_api.router)
    for router in notifications_api.routers:
        app.include_router(router)
    for router in report_api.routers:  # before the incidents router: /postmortem/publish is no review action
        app.include_router(router)
    for router in incidents_api.routers:
        app.include_router(router)
    for router in [*actions_api.routers, *playbooks_api.routers]:
        app.include_router(router)
    for router in incidents_evidence_api.routers:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=templating.STATIC_DIR), name="static")
    app.include_router(views.router)
    app.include_router(accounts_views.router)
    app.include_router(audit_views.router)
    for router in [*siem_views.routers, *detection_views.routers, *intel_views.routers]:
        app.include_router(router)
    for router in oncall_views.routers:
        app.include_router(router)
    app.include_router(paging_views.router)
    app.include_router(kb_views.router)
    for router in notifications_views.routers:
        app.include_router(router)
    for router in incidents_work_views.routers:
        app.include_router(router)
    app.include_router(incidents_views.router)
    for router in [*actions_views.routers, *playbooks_views.routers]:
        app.include_router(router)
    app.add_middleware(SecurityHeadersAndMetrics)
    app.add_middleware(BodyLimit)
    return app


def attach(app: FastAPI, settings: Settings, database: Database | None = None, *,
           receivers: Sequence[ReceiverFactory] = ()) -> FastAPI:
    """Give a built app its settings, records store and runtime parts, replacing any it had."""
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app.state = State()
    state = app.state
    state.settings = settings
    state.receivers = tuple(receivers)
    state.db = database or Database(settings.effective_database_url)
    state.siem = Siem(settings, state.db)
    state.intel = intel_for(settings, state.db)
    state.intel.events = state.siem.existing_store
    # The escalation engine; notification channels plug in as state.escalations.notify (a Notify).
    state.escalations = EscalationRunner(settings, state.db)
    # Playbooks started by incident events, and rollbacks of response actions whose TTL passed.
    state.response_runner = ResponseRunner(settings, state.db, intel=state.intel)
    # Pages go through the notification channels each policy level names; new incidents start the policy
    # configured for their unit and severity (vigil.response.paging).
    state.escalations.notify = ChannelNotify(settings, state.db)
    state.incident_paging = IncidentPaging(state.escalations)
    state.render_error = templating.render_error
    return app
