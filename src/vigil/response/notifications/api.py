"""/api/v1/notification-channels and /api/v1/notification-deliveries.

Channels are integrations: listing, configuring and testing them needs ``integrations:write`` (the
security administrator), within the units where the caller holds it. A reply never carries a secret:
``settings`` without them and ``secrets`` saying "set" or "not set".

The delivery log needs ``incidents:read``: it says who was told what about which incident, which is the
incident's own record (analysts, responders and viewers read it on the incident); a unit's readers see
the deliveries of their units. A test message's outcome is the reply of its POST.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam

from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.pagination import Page, PageParams, page_params, paginate
from vigil.response.notifications import service
from vigil.response.notifications.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    DeliveryRead,
    DeliveryStatus,
    NotifierKind,
)
from vigil.web.deps import SessionDep, context, require, settings_of

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Configurer = Annotated[Principal, Depends(require(Permission.INTEGRATIONS_WRITE))]
LogReader = Annotated[Principal, Depends(require(Permission.INCIDENTS_READ))]
ChannelId = Annotated[int, PathParam(ge=1, le=MAX_RECORD_ID, description="A notification channel's id.")]
Pages = Annotated[PageParams, Depends(page_params)]
FilterId = Annotated[int | None, Query(ge=1, le=MAX_RECORD_ID)]


@router.get("/notification-kinds")
def list_kinds(principal: Configurer, pages: Pages) -> Page[NotifierKind]:
    """The channel kinds installed (built-in and plugins) and the settings each takes."""
    found = service.kinds()
    return Page(items=found[pages.offset:pages.offset + pages.limit], total=len(found), limit=pages.limit,
                offset=pages.offset)


@router.get("/notification-channels")
def list_channels(principal: Configurer, session: SessionDep, pages: Pages,
                  kind: Annotated[str | None, Query(max_length=40)] = None,
                  enabled: bool | None = None) -> Page[ChannelRead]:
    items, total = paginate(session, service.channels_query(kind=kind, enabled=enabled), pages)
    return Page(items=[service.channel_read(row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


@router.post("/notification-channels", status_code=status.HTTP_201_CREATED)
def create_channel(data: ChannelCreate, request: Request, principal: Configurer, session: SessionDep) -> ChannelRead:
    """A channel of a kind (``GET /notification-kinds`` lists them); a wrong setting is a 422 naming it."""
    return service.channel_read(service.create_channel(context(request, session, principal), data=data))


@router.get("/notification-channels/{channel_id}")
def read_channel(channel_id: ChannelId, principal: Configurer, session: SessionDep) -> ChannelRead:
    return service.channel_read(service.get_channel(session, channel_id))


@router.patch("/notification-channels/{channel_id}")
def update_channel(channel_id: ChannelId, data: ChannelUpdate, request: Request, principal: Configurer,
                   session: SessionDep) -> ChannelRead:
    row = service.update_channel(context(request, session, principal), channel_id=channel_id, data=data)
    return service.channel_read(row)


@router.delete("/notification-channels/{channel_id}")
def delete_channel(channel_id: ChannelId, request: Request, principal: Configurer, session: SessionDep) -> ChannelRead:
    """Remove the channel; its deliveries stay in the log under its name."""
    return service.channel_read(service.delete_channel(context(request, session, principal), channel_id=channel_id))


@router.post("/notification-channels/{channel_id}/test")
def test_channel(channel_id: ChannelId, request: Request, principal: Configurer, session: SessionDep) -> DeliveryRead:
    """Send a test message now and answer with its delivery: ``sent``, or ``failed`` with the reason
    (a failing endpoint is an answer, not an error)."""
    settings = settings_of(request)
    delivery = service.send_test(context(request, session, principal), channel_id=channel_id,
                                 link=str(request.base_url).rstrip("/") + "/response/notifications",
                                 retry_delay=settings.notify_retry_seconds, timeout=settings.notify_timeout_seconds)
    return DeliveryRead.model_validate(delivery)


@router.get("/notification-deliveries")
def list_deliveries(principal: LogReader, session: SessionDep, pages: Pages, channel_id: FilterId = None,
                    incident_id: FilterId = None, status: DeliveryStatus | None = None,
                    message_kind: Annotated[str | None, Query(max_length=40)] = None) -> Page[DeliveryRead]:
    """The delivery log, newest first; ``?incident_id=`` gives what an incident's notifications did."""
    query = service.deliveries_query(channel_id=channel_id, incident_id=incident_id, status=status,
                                     message_kind=message_kind)
    items, total = paginate(session, query, pages)
    return Page(items=[DeliveryRead.model_validate(row) for row in items], total=total, limit=pages.limit,
                offset=pages.offset)


routers: list[APIRouter] = [router]
