"""The `vigil` command: one Typer app; each domain adds its command group from its own ``cli.py``.

Exit codes, the same for every command, for scripts to rely on:

* 0: success (also when there was nothing to do, e.g. a second `vigil init` or `vigil demo`).
* 1: the operation was refused or failed: no such user, a name already taken, a password the policy
  refuses, a broken audit trail, an unreachable records store. The reason is printed on stderr.
* 2: usage or settings error: a wrong option, a wrong setting (the message names it, e.g.
  ``VIGIL_PORT``), or a records store that was never initialised (run `vigil init`).

The CLI acts as the local operator: it sees every organisation unit, and the audit trail names it
``cli:<OS login name>``. Listings print a table, or JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Annotated

import typer
import uvicorn
from alembic.util.exc import CommandError

from vigil import __version__
from vigil.accounts import cli as accounts_cli
from vigil.accounts import demo as accounts_demo
from vigil.accounts.bootstrap import migrate
from vigil.audit import cli as audit_cli
from vigil.cli import runtime
from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    JsonOption,
    Operation,
    fail,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.core.config import ConfigError, Settings, config_file_path
from vigil.core.context import Context
from vigil.core.db import Database
from vigil.core.errors import VigilError
from vigil.detection import cli as detection_cli
from vigil.detection import cli_alerts, cli_hunts, cli_rules
from vigil.detection.alerts import alert_count
from vigil.detection.rules_import import install_starter_pack
from vigil.incidents import cli as incidents_cli
from vigil.incidents import demo as incidents_demo
from vigil.intel import cli as intel_cli
from vigil.intel import demo as intel_demo
from vigil.kb import cli as kb_cli
from vigil.kb import demo as kb_demo
from vigil.response import oncall_cli, oncall_demo, paging_cli
from vigil.response.actions import cli as actions_cli
from vigil.response.actions import demo as actions_demo
from vigil.response.notifications import cli as notifications_cli
from vigil.response.playbooks import cli as playbooks_cli
from vigil.siem import cli as siem_cli
from vigil.siem import demo as siem_demo
from vigil.siem.receivers import syslog as syslog_receivers
from vigil.web.app import create_app

app = typer.Typer(
    name="vigil",
    help="Vigil: an open-source Security Operations Center platform. " + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold passwords and tokens
)
config_app = typer.Typer(help="The effective settings.", no_args_is_help=True)

app.add_typer(accounts_cli.users, name="user")
app.add_typer(accounts_cli.tokens, name="token")
app.add_typer(accounts_cli.units, name="unit")
app.add_typer(audit_cli.app, name="audit")
app.add_typer(config_app, name="config")
siem_cli.register(app)
detection_cli.register(app)
app.add_typer(cli_rules.app, name="rules")
app.add_typer(cli_alerts.app, name="alerts")
app.add_typer(cli_hunts.app, name="hunts")
app.add_typer(intel_cli.app, name="intel")
app.add_typer(oncall_cli.oncall, name="oncall")
app.add_typer(oncall_cli.escalation, name="escalation")
oncall_cli.escalation.add_typer(paging_cli.paging, name="paging")
app.add_typer(kb_cli.app, name="kb")
app.add_typer(notifications_cli.app, name="notify")
app.add_typer(incidents_cli.app, name="incident")
app.add_typer(actions_cli.app, name="action")
app.add_typer(playbooks_cli.app, name="playbook")

# Every finished domain's demo data, loaded in this order. A loader adds what is missing and returns how
# many records of each kind it added (empty: nothing to do). Records-store loaders run in a transaction
# of their own; the SIEM's loads events through its own spool and pipeline.
DemoLoader = Callable[[Operation], Mapping[str, int]]


def in_transaction(loader: Callable[[Context], Mapping[str, int]]) -> DemoLoader:
    def run(op: Operation) -> Mapping[str, int]:
        with op.transaction() as ctx:
            return loader(ctx)
    return run


def load_detection_demo(op: Operation) -> Mapping[str, int]:
    """The starter rules (before the SIEM's demo day, so that its events raise alerts as they load)."""
    result = install_starter_pack(op.database)
    return {"starter rules": len(result.added) + len(result.updated)} if result.added or result.updated else {}


def load_siem_demo(op: Operation) -> Mapping[str, int]:
    """The demo day's events; the starter rules raise alerts on them as they load."""
    alerts_before = alert_count(op.database)
    added = dict(siem_demo.load(op.settings, op.database))
    if raised := alert_count(op.database) - alerts_before:
        added["alerts raised by the starter rules"] = raised
    with op.transaction() as ctx:
        if configured := siem_demo.configure_sources(ctx):
            added["log sources configured (one kept past retention, one expected but silent)"] = configured
    skipped = siem_demo.evtx_note()
    if skipped:
        note(f"siem: {skipped}")
    return added


def load_intel_demo(op: Operation) -> Mapping[str, int]:
    """ATT&CK's groups and software, a report on the demo day's intruder (retro-hunted), two feeds."""
    return intel_demo.load(op.settings, op.database, op.transaction)


DEMO_LOADERS: tuple[tuple[str, DemoLoader], ...] = (
    ("accounts", in_transaction(accounts_demo.load)),
    ("detection", load_detection_demo),
    ("siem", load_siem_demo),
    ("intel", load_intel_demo),
    ("oncall", in_transaction(oncall_demo.load)),
    ("kb", in_transaction(kb_demo.load)),
    ("incidents", in_transaction(incidents_demo.load)),
    ("response", in_transaction(actions_demo.load)),
)


def browser_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104 - compared only
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@app.command(epilog=EXIT_CODES_HELP)
def init() -> None:
    """Create or migrate the records store and the data folder. Safe to run again: it only does what is missing."""
    settings = runtime.settings()
    folder_existed = settings.data_dir.is_dir()
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create the data folder {settings.data_dir} (VIGIL_DATA_DIR): {exc}")
    database = Database(settings.effective_database_url)
    try:
        with runtime.store_errors(settings):
            before = runtime.current_revision(database)
            migrate(database)
            after = runtime.current_revision(database)
            starter = install_starter_pack(database)
    except CommandError as exc:
        fail(f"cannot migrate the records store at {runtime.store_label(settings)}: {exc}")
    finally:
        database.dispose()
    key_existed = (settings.data_dir / "secret.key").exists()
    try:
        settings.effective_secret_key()
    except OSError as exc:
        fail(f"cannot write the secret key into {settings.data_dir} (VIGIL_DATA_DIR): {exc}")
    typer.echo(f"data folder: {settings.data_dir.resolve()} ({'exists' if folder_existed else 'created'})")
    typer.echo(f"records store: {runtime.store_label(settings)}")
    if before is None:
        typer.echo(f"schema: created at revision {after}")
    elif before != after:
        typer.echo(f"schema: migrated from revision {before} to {after}")
    else:
        typer.echo(f"schema: already at revision {after}; nothing to migrate")
    typer.echo(f"detection rules: starter pack {starter.summary}" if starter.added or starter.updated
               else "detection rules: starter pack up to date")
    if settings.secret_key is not None:
        typer.echo("secret key: from the settings (VIGIL_SECRET_KEY)")
    else:
        key_path = settings.data_dir / "secret.key"
        typer.echo(f"secret key: {key_path} ({'exists' if key_existed else 'created'})")
    note("next: `vigil user add NAME --role system_admin` (or `vigil demo`), then `vigil serve`")


@app.command(epilog=EXIT_CODES_HELP)
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on; default the setting VIGIL_HOST.",
                                             show_default=False)] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on; default the setting VIGIL_PORT.",
                                             min=1, max=65535, show_default=False)] = None,
) -> None:
    """Serve the web UI and the API until interrupted (Ctrl+C). Refuses a store that `vigil init` never set up."""
    overrides = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    with operation(**overrides) as op:
        try:
            receivers = syslog_receivers.factories(op.settings)
        except ConfigError as exc:  # e.g. syslog over TLS without a readable certificate
            fail(str(exc), EXIT_USAGE)
        application = create_app(op.settings, op.database, receivers=receivers)
        note(f"Vigil {__version__} serving {browser_url(op.settings)} (records store "
             f"{runtime.store_label(op.settings)}); Ctrl+C stops it")
        # uvicorn re-raises Ctrl+C after its graceful shutdown: a normal stop, not a failure.
        with suppress(KeyboardInterrupt):
            uvicorn.run(application, host=op.settings.host, port=op.settings.port,
                        log_level=op.settings.log_level.lower(), server_header=False)
    note("Vigil stopped")


@app.command(epilog=EXIT_CODES_HELP)
def demo() -> None:
    """Load the demo data of every finished part and print the demo logins. Safe to run again.

    For evaluation only: the demo passwords are published, so never load them into a production store.
    """
    with operation() as op:
        changed = False
        for domain, loader in DEMO_LOADERS:
            try:
                added = loader(op)
            except VigilError as exc:  # e.g. the event store is held by a running server
                note(f"{domain}: not loaded: {exc.detail}")
                continue
            if added:
                changed = True
                typer.echo(f"{domain}: loaded " + ", ".join(f"{count} {kind}" for kind, count in added.items()))
            else:
                typer.echo(f"{domain}: already loaded")
        if not changed:
            typer.echo("demo data already loaded; nothing changed")
        with op.transaction() as ctx:
            logins = accounts_demo.login_status(ctx)
        typer.echo("")
        typer.echo(f"Vigil: {browser_url(op.settings)}  (start it with `vigil serve`)")
        typer.echo("Demo logins (published passwords: for evaluation only):")
        print_table(["USERNAME", "PASSWORD", "ROLE", "UNIT"],
                    [[spec.username, spec.password, str(spec.role), spec.unit] for spec, works in logins if works])
        for spec, works in logins:
            if not works:
                note(f"warning: the demo login {spec.username!r} does not work here: an account of that name "
                     "existed before the demo, or it was disabled or its password changed; it was left alone")


@config_app.command("show", epilog=EXIT_CODES_HELP)
def show_config(as_json: JsonOption = False) -> None:
    """Print the effective settings (environment, vigil.toml, defaults) with secrets masked."""
    settings = runtime.settings()
    shown = settings.masked()
    if as_json:
        print_json(shown)
        return
    source = config_file_path()
    typer.echo(f"settings file: {source if source is not None else 'none (environment variables and defaults)'}")
    print_table(
        ["SETTING", "VALUE", "ENVIRONMENT VARIABLE"],
        [[name, "(not set)" if value is None else str(value), f"VIGIL_{name.upper()}"]
         for name, value in shown.items()],
    )


@app.command(epilog=EXIT_CODES_HELP)
def version() -> None:
    """Print the version of Vigil."""
    typer.echo(f"vigil {__version__}")
