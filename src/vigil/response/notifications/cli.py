"""`vigil notify`: notification channels (add, list, remove, send a test) and the delivery log.

A channel's settings are given as ``--set key=value`` (a JSON list or true/false is read as JSON, so
``--set to='["a@example.com"]'`` and ``--set at_all=true`` work; a list may also be comma-separated, and a
number is read by the setting that takes one).
Secrets are never printed: listings say "set" or "not set".
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from vigil.cli.runtime import EXIT_CODES_HELP, EXIT_USAGE, JsonOption, fail, operation, print_json, print_table
from vigil.response.notifications import service
from vigil.response.notifications.models import NotificationChannel
from vigil.response.notifications.schemas import ChannelCreate, DeliveryRead

app = typer.Typer(help="Notification channels (DingTalk, WeCom, Feishu, e-mail, Slack, webhook) and deliveries.",
                  no_args_is_help=True)
channel_app = typer.Typer(help="Configured notification channels.", no_args_is_help=True)
app.add_typer(channel_app, name="channel")

SetPairs = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="A setting of the kind as key=value (a JSON list or true/false read as JSON): url=..., "
                        "access_token=..., secret=..., to=a@x.cn,b@x.cn ...", show_default=False)]


def _pairs(pairs: list[str] | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--set {pair!r}: write key=value", EXIT_USAGE)
        try:
            value = orjson.loads(raw)
            # Lists and true/false as JSON; anything else as typed (a numeric key stays text).
            config[key.strip()] = value if isinstance(value, list | bool) else raw
        except orjson.JSONDecodeError:
            config[key.strip()] = raw
    return config


def _channel(session: Any, ref: str) -> NotificationChannel:
    """A channel by id or by name."""
    if ref.isdigit():
        return service.get_channel(session, int(ref))
    return service.find_channel(session, ref)


def _describe(channel: NotificationChannel) -> dict[str, Any]:
    return service.channel_read(channel).model_dump(mode="json")


@channel_app.command("add", epilog=EXIT_CODES_HELP)
def add_channel(
    name: Annotated[str, typer.Argument(help="A name for the channel.", show_default=False)],
    kind: Annotated[str, typer.Option("--kind", "-k", help="dingtalk, wecom, feishu, email, slack or webhook.",
                                      show_default=False)],
    settings: SetPairs = None,
    language: Annotated[str, typer.Option("--language", help="Language of its messages: zh_CN or en.")] = "zh_CN",
    attempts: Annotated[int, typer.Option("--attempts", help="Tries per message (1-10).")] = 3,
    unit: Annotated[int | None, typer.Option("--unit", help="The unit's id; default: headquarters.",
                                             show_default=False)] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it turned off.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a channel; a wrong setting is refused with the field named, and nothing is stored."""
    try:
        data = ChannelCreate(name=name, kind=kind, language=language,
                             config=_pairs(settings), max_attempts=attempts, unit_id=unit, enabled=not disabled)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        shown = _describe(service.create_channel(ctx, data=data))
    if as_json:
        print_json(shown)
    else:
        typer.echo(f"channel {shown['id']} {shown['name']!r} ({shown['kind']}) added")


@channel_app.command("list", epilog=EXIT_CODES_HELP)
def list_channels(as_json: JsonOption = False) -> None:
    """Every channel with its settings; secrets only as set or not set."""
    with operation() as op, op.transaction() as ctx:
        shown = [_describe(channel) for channel in service.list_channels(ctx.session)]
    if as_json:
        print_json(shown)
        return
    print_table(["id", "name", "kind", "language", "enabled", "unit", "settings", "secrets"], [
        [str(c["id"]), c["name"], c["kind"], c["language"], "yes" if c["enabled"] else "no", str(c["unit_id"]),
         ", ".join(f"{k}={v}" for k, v in c["settings"].items()),
         ", ".join(f"{k}: {v}" for k, v in c["secrets"].items())] for c in shown])


@channel_app.command("remove", epilog=EXIT_CODES_HELP)
def remove_channel(
    channel: Annotated[str, typer.Argument(help="The channel's id or name.", show_default=False)],
) -> None:
    """Remove a channel; its deliveries stay in the log."""
    with operation() as op, op.transaction() as ctx:
        removed = service.delete_channel(ctx, channel_id=_channel(ctx.session, channel).id)
    typer.echo(f"channel {removed.id} {removed.name!r} removed")


@channel_app.command("test", epilog=EXIT_CODES_HELP)
def test_channel(channel: Annotated[str, typer.Argument(help="The channel's id or name.", show_default=False)],
                 as_json: JsonOption = False) -> None:
    """Send a test message now; exit 1 when it was not delivered (the reason is printed)."""
    with operation() as op, op.transaction() as ctx:
        found = _channel(ctx.session, channel)
        delivery = DeliveryRead.model_validate(service.send_test(
            ctx, channel_id=found.id, retry_delay=op.settings.notify_retry_seconds,
            timeout=op.settings.notify_timeout_seconds))
    if as_json:
        print_json(delivery.model_dump(mode="json"))
    elif delivery.status == "sent":
        typer.echo(f"test message to {delivery.channel_name!r} delivered after {delivery.attempts} attempt(s)")
    if delivery.status != "sent":
        fail(f"test message to {delivery.channel_name!r} not delivered after {delivery.attempts} attempt(s): "
             f"{delivery.last_error}")


@app.command("deliveries", epilog=EXIT_CODES_HELP)
def deliveries(
    channel: Annotated[str | None, typer.Option("--channel", help="Only this channel (id or name).",
                                                show_default=False)] = None,
    incident: Annotated[int | None, typer.Option("--incident", help="Only this incident's.",
                                                 show_default=False)] = None,
    status: Annotated[str | None, typer.Option("--status", help="pending, sent or failed.", show_default=False)] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first."""
    if status is not None and status not in service.STATUSES:
        fail(f"--status {status!r}: one of {', '.join(service.STATUSES)}", EXIT_USAGE)
    with operation() as op, op.transaction() as ctx:
        channel_id = _channel(ctx.session, channel).id if channel else None
        query = service.deliveries_query(channel_id=channel_id, incident_id=incident, status=status).limit(limit)
        rows = [DeliveryRead.model_validate(row).model_dump(mode="json") for row in ctx.session.scalars(query)]
    if as_json:
        print_json(rows)
        return
    print_table(["id", "created", "channel", "kind", "incident", "status", "attempts", "error"], [
        [str(r["id"]), r["created_at"][:19], r["channel_name"], r["message_kind"], str(r["incident_id"] or ""),
         r["status"], str(r["attempts"]), r["last_error"][:80]] for r in rows])
