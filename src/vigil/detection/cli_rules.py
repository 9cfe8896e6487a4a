"""`vigil rules import|list|show|enable|disable|set|test|packs|placeholders`: detection rules and packs from the shell.

Importing a pack prints what changed since its last import (added, updated, removed, unchanged) and every
rule that did not load, as ``file:line: reason``. ``vigil rules test`` runs a rule's test cases (exit 1
when one fails) or tries the records of a file on it. Every change is audited as the local operator
(``cli:<login>``); a running server picks the change up at its next rules check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from vigil.cli.runtime import (
    EXIT_CODES_HELP,
    JsonOption,
    fail,
    local_time,
    note,
    operation,
    print_json,
    print_table,
)
from vigil.detection import cli_placeholders, rule_tests, rules_import, rules_service
from vigil.detection.schemas_rules import (
    EnablePolicy,
    Expectation,
    ImportResult,
    RuleChange,
    RuleFilters,
    RuleTestReport,
    RuleTestTry,
    RuleUpdate,
)

app = typer.Typer(help="Detection rules: import packs, list, show, enable, disable and tune rules.",
                  no_args_is_help=True)

RuleRefs = Annotated[list[str], typer.Argument(help="Rule ids, or Sigma ids held by one pack.", show_default=False)]
LIST_LIMIT = 20  # changes listed per kind after an import; --json has them all
MAX_FILE_RECORDS = 10_000  # records `vigil rules test --event` tries from one file
MAX_EVENT_FILE = 64 * 1024 * 1024
OUTCOMES = {"match": "fires", "no_match": "no match", "unreadable": "parse error", "error": "not run"}
EXPECTED = {"match": "must fire", "no_match": "must not fire", None: "-"}


def _changes(label: str, changes: list[RuleChange]) -> None:
    if not changes:
        return
    typer.echo(f"{label}:")
    for change in changes[:LIST_LIMIT]:
        typer.echo(f"  {change.title} ({change.path})")
    if len(changes) > LIST_LIMIT:
        typer.echo(f"  ... and {len(changes) - LIST_LIMIT} more (--json lists them all)")


def print_import(result: ImportResult) -> None:
    verb = "imported" if result.created else "updated"
    typer.echo(f"pack {result.pack.name} {verb}: version {result.pack.version}, {result.pack.rule_count} rules")
    _changes("added", result.added)
    _changes("updated", result.updated)
    _changes("removed", result.removed)
    typer.echo(result.summary)
    if result.left_disabled:
        why = {EnablePolicy.stable_test: "experimental, deprecated or unsupported (enable them with "
                                         "`vigil rules enable`, or import with --enable all)",
               EnablePolicy.all: "deprecated or unsupported",
               EnablePolicy.none: "--enable none"}[result.enable]
        typer.echo(f"{len(result.left_disabled)} new rules left disabled: {why}")
    for error in result.errors:
        note(f"not loaded: {error}")


@app.command("import", epilog=EXIT_CODES_HELP)
def import_command(
    path: Annotated[Path, typer.Argument(help="A folder of Sigma rules (a git checkout too), a release .zip or "
                                              "one .yml rule.", show_default=False)],
    pack: Annotated[str | None, typer.Option("--pack", help="Pack name; default: the folder's or file's name.",
                                             show_default=False)] = None,
    enable: Annotated[EnablePolicy, typer.Option("--enable", help="Which new rules start enabled: stable-test "
                                                 "(stable, test and rules without a status; SigmaHQ's experimental "
                                                 "ones are noisy), all, or none. Deprecated and unsupported rules "
                                                 "never are. Rules already imported keep their setting.")]
    = EnablePolicy.stable_test,
    as_json: JsonOption = False,
) -> None:
    """Import a rule pack, or update it: prints what changed and the rules that did not load."""
    with operation() as op, op.transaction() as ctx:
        result = rules_import.import_into(ctx, path=path, name=pack, enable=enable)
    if as_json:
        print_json(result.model_dump(mode="json"))
        for error in result.errors:
            note(f"not loaded: {error}")
        return
    print_import(result)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_command(
    level: Annotated[str | None, typer.Option("--level", help="Effective level.", show_default=False)] = None,
    status: Annotated[str | None, typer.Option("--status", show_default=False)] = None,
    tactic: Annotated[str | None, typer.Option("--tactic", help="ATT&CK tactic.", show_default=False)] = None,
    technique: Annotated[str | None, typer.Option("--technique", help="T1059 also finds T1059.001.",
                                                  show_default=False)] = None,
    product: Annotated[str | None, typer.Option("--product", show_default=False)] = None,
    category: Annotated[str | None, typer.Option("--category", show_default=False)] = None,
    service: Annotated[str | None, typer.Option("--service", show_default=False)] = None,
    pack: Annotated[str | None, typer.Option("--pack", show_default=False)] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="Only enabled (or disabled) rules.",
                                                 show_default=False)] = None,
    text: Annotated[str | None, typer.Option("--text", "-q", help="Text in the title.", show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Rules by title, with their level (override shown), status, pack, ATT&CK and hits."""
    with operation() as op, op.transaction() as ctx:
        filters = RuleFilters.model_validate({"level": level, "status": status, "tactic": tactic,
                                              "technique": technique, "product": product, "category": category,
                                              "service": service, "pack": pack, "enabled": enabled, "q": text})
        found = rules_service.list_rules(ctx.session, filters=filters)
    if as_json:
        print_json([item.model_dump(mode="json") for item in found.items])
        return
    rows = [[str(r.id), "on" if r.enabled else "off", r.effective_level + (" *" if r.level_override else ""),
             r.status or "-", r.title, r.pack, ",".join(r.techniques) or "-",
             "/".join(part for part in (r.product, r.category, r.service) if part) or "-",
             str(r.hits), str(r.false_positives)] for r in found.items]
    print_table(["ID", "ENABLED", "LEVEL", "STATUS", "TITLE", "PACK", "TECHNIQUES", "LOG SOURCE", "HITS", "FP"], rows)
    note(f"{found.total} rules" + (" (* level overridden)" if any(r.level_override for r in found.items) else ""))


@app.command("show", epilog=EXIT_CODES_HELP)
def show_command(ref: Annotated[str, typer.Argument(help="Rule id or Sigma id.", show_default=False)],
                 as_json: JsonOption = False) -> None:
    """One rule: metadata, the SOC's settings, hit figures, and its YAML."""
    with operation() as op, op.transaction() as ctx:
        row = rules_service.find_rule(ctx.session, ref)
        rule = rules_service.read_rule(ctx.session, row.id)
        yaml = row.yaml
    if as_json:
        print_json({**rule.model_dump(mode="json"), "yaml": yaml})
        return
    level = rule.level + (f" (overridden: {rule.level_override})" if rule.level_override else "")
    for label, value in [
        ("id", str(rule.id)), ("sigma id", rule.rule_uid), ("title", rule.title), ("pack", rule.pack),
        ("file", rule.path), ("enabled", "yes" if rule.enabled else "no"), ("level", level),
        ("status", rule.status or "-"), ("author", rule.author or "-"),
        ("log source", "/".join(p for p in (rule.product, rule.category, rule.service) if p) or "-"),
        ("tactics", ", ".join(rule.tactics) or "-"), ("techniques", ", ".join(rule.techniques) or "-"),
        ("hits", str(rule.hits)), ("false positives", str(rule.false_positives)),
        ("last hit", local_time(op.settings, rule.last_hit_at)), ("notes", rule.notes or "-"),
    ]:
        typer.echo(f"{label + ':':<17}{value}")
    for reference in rule.references:
        typer.echo(f"{'reference:':<17}{reference}")
    typer.echo("")
    typer.echo(yaml.rstrip("\n"))


def _switch(refs: list[str], enabled: bool) -> None:
    with operation() as op, op.transaction() as ctx:
        ids = [rules_service.find_rule(ctx.session, ref).id for ref in refs]
        result = rules_service.set_enabled(ctx, ids=ids, enabled=enabled)
    state = "enabled" if enabled else "disabled"
    typer.echo(f"{result.changed} rules {state}" + (f" ({len(set(ids)) - result.changed} already were)"
                                                    if len(set(ids)) > result.changed else ""))


@app.command("enable", epilog=EXIT_CODES_HELP)
def enable_command(refs: RuleRefs) -> None:
    """Enable rules (all of them, or none when one is unknown)."""
    _switch(refs, True)


@app.command("disable", epilog=EXIT_CODES_HELP)
def disable_command(refs: RuleRefs) -> None:
    """Disable rules (all of them, or none when one is unknown)."""
    _switch(refs, False)


@app.command("set", epilog=EXIT_CODES_HELP)
def set_command(
    ref: Annotated[str, typer.Argument(help="Rule id or Sigma id.", show_default=False)],
    level: Annotated[str | None, typer.Option("--level", help="Level its alerts get (informational, low, medium, "
                                              "high, critical); '' restores the rule's own.",
                                              show_default=False)] = None,
    notes: Annotated[str | None, typer.Option("--notes", help="The SOC's notes on the rule.",
                                              show_default=False)] = None,
) -> None:
    """Override a rule's level or set its notes."""
    given: dict[str, object] = {}
    if level is not None:
        given["level_override"] = level or None
    if notes is not None:
        given["notes"] = notes
    if not given:
        fail("give --level or --notes", 2)
    with operation() as op, op.transaction() as ctx:
        row = rules_service.find_rule(ctx.session, ref)
        rules_service.update_rule(ctx, rule_id=row.id, data=RuleUpdate.model_validate(given))
        effective = row.effective_level
        title = row.title
    typer.echo(f"rule {title} saved (level {effective})")


def _records(path: Path, format_name: str | None, expect: Expectation | None) -> list[RuleTestTry]:
    try:
        if path.stat().st_size > MAX_EVENT_FILE:
            fail(f"{path} is larger than {MAX_EVENT_FILE:,} bytes")
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return [RuleTestTry.model_validate({"format": format_name, "record": record, "expect": expect})
                for record in rule_tests.split_records(text, limit=MAX_FILE_RECORDS)]
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(str(part) for part in error['loc'])}: "
                       f"{str(error['msg']).removeprefix('Value error, ')}" for error in exc.errors()))


def _print_report(report: RuleTestReport, *, tried: bool) -> None:
    rows = []
    for number, result in enumerate(report.results, start=1):
        verdict = "-" if result.passed is None else "PASS" if result.passed else "FAIL"
        name = result.name if not tried else result.record.replace("\n", " ")[:60]
        rows.append([verdict, str(number if tried else result.index), name, EXPECTED[result.expect],
                     OUTCOMES[result.got], result.format])
    print_table([*(["RESULT", "#", "RECORD"] if tried else ["RESULT", "CASE", "NAME"]), "EXPECTED", "GOT", "FORMAT"],
                rows)
    for number, result in enumerate(report.results, start=1):
        if result.error:
            note(f"{'record ' + str(number) if tried else 'case ' + str(result.index)}: {result.error}")


@app.command("test", epilog="Exit codes: 0 every case passed (every record read); 1 a case failed, a record "
                            "did not parse, or the test was refused; 2 usage or settings error.")
def test_command(
    ref: Annotated[str, typer.Argument(help="Rule id or Sigma id.", show_default=False)],
    event: Annotated[Path | None, typer.Option("--event", help="Try the records of this file instead (one a "
                                               "line, or a JSON document or array); nothing is stored.",
                                               show_default=False)] = None,
    format_name: Annotated[str | None, typer.Option("--format", help="The parser of --event's records (json, "
                                                    "syslog, windows_json, ...); default: detected per record.",
                                                    show_default=False)] = None,
    expect: Annotated[str | None, typer.Option("--expect", help="With --event: match (each record must fire "
                                               "the rule) or no_match; a record that does not exits 1.",
                                               show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a rule's test cases (events that must fire it, near misses that must not), or try a file's records."""
    if expect not in (None, "match", "no_match"):
        fail("--expect is match or no_match", 2)
    if event is None and (format_name or expect):
        fail("--format and --expect go with --event", 2)
    wanted: Expectation | None = "match" if expect == "match" else "no_match" if expect else None
    tries = _records(event, format_name, wanted) if event is not None else None
    with operation() as op, op.transaction() as ctx:
        row = rules_service.find_rule(ctx.session, ref)
        if tries is None:
            report = rule_tests.run_tests(ctx.session, rule_id=row.id)
        else:
            report = rule_tests.try_events(ctx.session, rule_id=row.id, events=tries, limit=MAX_FILE_RECORDS)
    if as_json:
        print_json(report.model_dump(mode="json"))
    elif tries is None and not report.total:
        note(f"rule {report.rule_id} {report.title} has no test cases")
    else:
        typer.echo(f"rule {report.rule_id} {report.title}: " + (
            f"{report.passed} of {report.total} passed" if tries is None or wanted else
            f"{sum(r.got == 'match' for r in report.results)} of {report.total} records fire it"))
        _print_report(report, tried=tries is not None)
    if report.error:
        note(f"the rule cannot run: {report.error}")
    if not report.ok or any(result.got == "unreadable" for result in report.results):
        raise typer.Exit(1)


@app.command("packs", epilog=EXIT_CODES_HELP)
def packs_command(as_json: JsonOption = False) -> None:
    """Imported packs: version, rule count, when and by whom, and how many rules did not load."""
    with operation() as op, op.transaction() as ctx:
        packs = [rules_service.pack_read(pack) for pack in rules_service.list_packs(ctx.session)]
    if as_json:
        print_json([pack.model_dump(mode="json") for pack in packs])
        return
    print_table(["PACK", "VERSION", "RULES", "NOT LOADED", "IMPORTED", "BY", "SOURCE"],
                [[p.name, p.version, str(p.rule_count), str(len(p.errors)), local_time(op.settings, p.imported_at),
                  p.imported_by, p.source] for p in packs])



app.add_typer(cli_placeholders.app, name="placeholders")
