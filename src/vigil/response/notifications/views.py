"""The notification pages: channels with their add and edit forms, "send a test" with its outcome, and
the delivery log.

The channels page needs ``integrations:write`` (as the API); the delivery log ``incidents:read``. Secret
fields are password inputs that are never filled in: left empty they keep the stored value, and the
page says only whether each is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core.auth import Permission, Principal
from vigil.core.db import MAX_RECORD_ID
from vigil.core.errors import BadInput, Conflict, NotFound
from vigil.core.pagination import PageParams, page_params, paginate
from vigil.response.notifications import service
from vigil.response.notifications.models import NotificationChannel, NotificationDelivery
from vigil.response.notifications.schemas import ChannelCreate, ChannelUpdate
from vigil.response.notifiers.base import ConfigField
from vigil.web.deps import SessionDep, context, settings_of
from vigil.web.templating import (
    N_,
    FormDep,
    Pager,
    PageRoute,
    Translator,
    describe_error,
    format_time,
    page_guard,
    redirect,
    render,
    text_fields,
    translator,
    unit_options,
    validate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)
Configurer = Annotated[Principal, Depends(page_guard(Permission.INTEGRATIONS_WRITE))]
LogReader = Annotated[Principal, Depends(page_guard(Permission.INCIDENTS_READ))]
ChannelId = Annotated[int, Path(ge=1, le=MAX_RECORD_ID)]
FilterText = Annotated[str, Query(max_length=20)]
REFUSED = (BadInput, Conflict, NotFound)
PAGE = "/response/notifications"
BASE_FIELDS = ("name", "language", "unit_id", "max_attempts", "description")
DONE = frozenset({"created", "saved", "deleted"})

KIND_LABELS: Mapping[str, str] = {
    "dingtalk": N_("DingTalk robot"),
    "wecom": N_("WeCom robot"),
    "feishu": N_("Feishu bot"),
    "email": N_("E-mail (SMTP)"),
    "slack": N_("Slack incoming webhook"),
    "webhook": N_("Signed webhook"),
}
FIELD_LABELS: Mapping[str, str] = {
    "url": N_("Webhook address"),
    "access_token": N_("Access token"),
    "secret": N_("Signing secret"),
    "at_mobiles": N_("Mention these mobile numbers"),
    "at_all": N_("Mention everyone"),
    "key": N_("Robot key"),
    "host": N_("SMTP server"),
    "port": N_("Port"),
    "security": N_("Connection security"),
    "username": N_("User name"),
    "password": N_("Password"),
    "from_address": N_("From address"),
    "to": N_("Recipients"),
}
FIELD_HINTS: Mapping[str, str] = {
    "at_mobiles": N_("Comma-separated."),
    "to": N_("Comma-separated e-mail addresses."),
    "secret": N_("The secret shown when signing is turned on for the robot or webhook."),
    "access_token": N_("Leave empty when the webhook address above includes it."),
    "key": N_("Leave empty when the webhook address above includes it."),
}
LANGUAGE_LABELS: Mapping[str, str] = {"zh_CN": "简体中文", "en": "English"}
STATUS_LABELS: Mapping[str, str] = {"pending": N_("pending"), "sent": N_("sent"), "failed": N_("failed")}


@dataclass
class FormState:
    """The add or edit form as sent, when refused: values (never secrets), complaints per field, a summary."""

    kind: str = ""
    channel_id: int | None = None
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


def record_id(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and 0 < int(text) <= MAX_RECORD_ID else None


def kind_label(_: Translator, kind: str) -> str:
    return _(KIND_LABELS[kind]) if kind in KIND_LABELS else kind


def _field_view(_: Translator, spec: ConfigField) -> dict[str, Any]:
    return {"name": spec.name, "input": f"cfg_{spec.name}", "type": spec.type, "required": spec.required,
            "secret": spec.secret, "choices": [(choice, choice) for choice in spec.choices],
            "label": _(FIELD_LABELS[spec.name]) if spec.name in FIELD_LABELS else spec.name,
            "hint": _(FIELD_HINTS[spec.name]) if spec.name in FIELD_HINTS else "",
            "default": "" if spec.default is None else spec.default}


def _form_values(channel: NotificationChannel) -> dict[str, Any]:
    """An edit form's values: the channel's settings, never its secrets."""
    settings, _secrets = service.public_settings(channel)
    values: dict[str, Any] = {"name": channel.name, "language": channel.language, "unit_id": channel.unit_id,
                              "max_attempts": channel.max_attempts, "description": channel.description,
                              "enabled": channel.enabled}
    for key, value in settings.items():
        values[f"cfg_{key}"] = ", ".join(value) if isinstance(value, list) else value
    return values


def _page(request: Request, principal: Principal, session: Session, *, form: FormState | None = None,
          status: int = 200) -> HTMLResponse:
    _ = translator(request)
    channels = service.list_channels(session)
    units = list(accounts.list_units(session))
    writable = principal.units_for(Permission.INTEGRATIONS_WRITE)
    add = request.query_params.get("add", "")
    edit = request.query_params.get("edit", "")
    if form is None and add in service.notifiers():
        form = FormState(kind=add, values={"language": "zh_CN", "max_attempts": 3, "enabled": True,
                                           "unit_id": principal.unit_id})
    elif form is None and edit.isdigit() and 0 < int(edit) <= MAX_RECORD_ID:
        channel = service.get_channel(session, int(edit))
        form = FormState(kind=channel.kind, channel_id=channel.id, values=_form_values(channel))
    tested = None
    tested_id = request.query_params.get("tested", "")
    if tested_id.isdigit() and 0 < int(tested_id) <= MAX_RECORD_ID:
        try:
            found = service.get_delivery(session, int(tested_id))
        except NotFound:
            found = None
        tested = found if found is not None and found.message_kind == "test" else None
    plugins = service.notifiers()
    editing = None
    if form is not None and form.channel_id is not None:
        editing = next((c for c in channels if c.id == form.channel_id), None)
    done = request.query_params.get("done", "")
    zone = ZoneInfo(settings_of(request).timezone)
    return render(request, "response/notifications.html", {
        "channels": [(channel, *service.public_settings(channel)) for channel in channels],
        "kinds": [(kind, kind_label(_, kind)) for kind in sorted(plugins)],
        "kind_label": lambda kind: kind_label(_, kind),
        "form": form,
        "form_fields": [_field_view(_, spec) for spec in plugins[form.kind].fields]
        if form is not None and form.kind in plugins else [],
        "editing_secrets": service.public_settings(editing)[1] if editing is not None else {},
        "unit_names": {unit.id: unit.name for unit in units},
        "write_units": unit_options(unit for unit in units if unit.id in writable),
        "language_options": list(LANGUAGE_LABELS.items()),
        "language_labels": LANGUAGE_LABELS,
        "tested": tested,
        "status_label": lambda status: _(STATUS_LABELS.get(status, status)),
        "tests": service.deliveries_of(session, channel_ids=[c.id for c in channels], message_kind="test"),
        "attempt_time": lambda text: format_time(datetime.fromisoformat(text), zone),
        "done": done if done in DONE else "",
    }, status=status)


@router.get(PAGE)
def channels_page(request: Request, principal: Configurer, session: SessionDep) -> HTMLResponse:
    return _page(request, principal, session)


def _config_of(form: FormDep, specs: tuple[ConfigField, ...], *, create: bool) -> dict[str, Any]:
    """The kind's fields from the form. Empty: left out on creation, the default on update; an empty secret
    keeps the stored one (``core.inputs.merge_settings``) unless its "clear" box is ticked."""
    config: dict[str, Any] = {}
    for spec in specs:
        raw = form.get(f"cfg_{spec.name}")
        text = raw.strip() if isinstance(raw, str) else ""
        if spec.type == "bool":
            config[spec.name] = text in ("on", "true", "1")
        elif spec.secret and form.get(f"clear_{spec.name}") == "on":
            config[spec.name] = None
        elif text or spec.secret:
            config[spec.name] = text
        elif not create:
            config[spec.name] = None
    return {key: value for key, value in config.items() if not (create and value in ("", None))}


def _base_values(form: FormDep) -> dict[str, Any]:
    values: dict[str, Any] = dict(text_fields(form, *BASE_FIELDS))
    values["enabled"] = form.get("enabled") in ("on", "true", "1")
    return values


def _shown(values: dict[str, Any], form: FormDep, specs: tuple[ConfigField, ...]) -> dict[str, Any]:
    """What a refused form shows again: everything typed except secrets."""
    shown = dict(values)
    for spec in specs:
        raw = form.get(f"cfg_{spec.name}")
        if not spec.secret:
            shown[f"cfg_{spec.name}"] = (raw in ("on", "true", "1")) if spec.type == "bool" else (
                raw.strip() if isinstance(raw, str) else "")
    return shown


def _refusal(exc: BadInput | Conflict | NotFound, _: Translator) -> tuple[dict[str, str], str]:
    errors: dict[str, str] = {}
    for item in exc.extra.get("errors", []) if isinstance(exc, BadInput) else []:
        name = str(item.get("field", ""))
        errors[f"cfg_{name.removeprefix('config.')}" if name.startswith("config.") else name] = str(item["message"])
    return errors, describe_error(exc, _)


def _nullable(values: dict[str, Any]) -> dict[str, Any]:
    data = {key: (value if value != "" else None) for key, value in values.items()}
    data["description"] = values.get("description", "")
    return data


@router.post(PAGE)
def create_channel(request: Request, principal: Configurer, session: SessionDep, form: FormDep) -> Response:
    _ = translator(request)
    kind = str(form.get("kind") or "")
    plugin = service.notifiers().get(kind)
    if plugin is None:
        raise BadInput(f"unknown channel kind {kind!r}")
    values = _base_values(form)
    data_in = {**_nullable(values), "kind": kind, "config": _config_of(form, plugin.fields, create=True)}
    data_in = {key: value for key, value in data_in.items() if value is not None}
    data, errors = validate(ChannelCreate, data_in, _)
    state = FormState(kind, None, _shown(values, form, plugin.fields), errors,
                      _("Check the marked fields.") if errors else "")
    if data is not None:
        try:
            with session.begin_nested():
                service.create_channel(context(request, session, principal), data=data)
            return redirect(f"{PAGE}?done=created")
        except REFUSED as exc:
            state.errors, state.error = _refusal(exc, _)
    return _page(request, principal, session, form=state, status=422)


@router.post(PAGE + "/{channel_id}")
def update_channel(channel_id: ChannelId, request: Request, principal: Configurer, session: SessionDep,
                   form: FormDep) -> Response:
    _ = translator(request)
    channel = service.get_channel(session, channel_id)  # 404 outside the caller's scope, before the form
    specs = service.notifier(channel.kind).fields
    values = _base_values(form)
    data_in = {**_nullable(values), "config": _config_of(form, specs, create=False)}
    data, errors = validate(ChannelUpdate, data_in, _)
    state = FormState(channel.kind, channel.id, _shown(values, form, specs), errors,
                      _("Check the marked fields.") if errors else "")
    if data is not None:
        try:
            with session.begin_nested():
                service.update_channel(context(request, session, principal), channel_id=channel_id, data=data)
            return redirect(f"{PAGE}?done=saved")
        except REFUSED as exc:
            state.errors, state.error = _refusal(exc, _)
    return _page(request, principal, session, form=state, status=422)


@router.post(PAGE + "/{channel_id}/delete")
def delete_channel(channel_id: ChannelId, request: Request, principal: Configurer, session: SessionDep) -> Response:
    service.delete_channel(context(request, session, principal), channel_id=channel_id)
    return redirect(f"{PAGE}?done=deleted")


@router.post(PAGE + "/{channel_id}/test")
def test_channel(channel_id: ChannelId, request: Request, principal: Configurer, session: SessionDep) -> Response:
    """Send a test message now, then show the page with its outcome."""
    settings = settings_of(request)
    delivery = service.send_test(context(request, session, principal), channel_id=channel_id,
                                 link=str(request.base_url).rstrip("/") + PAGE,
                                 retry_delay=settings.notify_retry_seconds, timeout=settings.notify_timeout_seconds)
    return redirect(f"{PAGE}?tested={delivery.id}#tested")


@router.get(PAGE + "/deliveries")
def deliveries_page(request: Request, principal: LogReader, session: SessionDep,
                    pages: Annotated[PageParams, Depends(page_params)], channel: FilterText = "",
                    incident: FilterText = "", status: FilterText = "") -> HTMLResponse:
    """The filter form sends empty fields as empty strings: an empty or unreadable filter is no filter."""
    _ = translator(request)
    channel_id, incident_id = record_id(channel), record_id(incident)
    chosen = status if status in service.STATUSES else ""
    query = service.deliveries_query(channel_id=channel_id, incident_id=incident_id, status=chosen or None)
    items, total = paginate(session, query, pages)
    named = session.execute(select(NotificationDelivery.channel_id, NotificationDelivery.channel_name)
                            .where(NotificationDelivery.channel_id.is_not(None)).distinct()).all()
    params = {"channel": str(channel_id or ""), "incident": str(incident_id or ""), "status": chosen}
    return render(request, "response/deliveries.html", {
        "deliveries": items,
        "pager": Pager(PAGE + "/deliveries", total, pages.limit, pages.offset, params),
        "filters": params,
        "channel_options": sorted({(str(cid), name) for cid, name in named}, key=lambda pair: pair[1]),
        "status_options": [(key, _(label)) for key, label in STATUS_LABELS.items()],
        "status_label": lambda value: _(STATUS_LABELS.get(value, value)),
        "kind_label": lambda kind: kind_label(_, kind),
    })


routers: list[APIRouter] = [router]
