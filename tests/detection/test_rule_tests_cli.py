"""`vigil rules test REF [--event FILE [--format F] [--expect E]]` against a real records store: a starter
rule's cases pass (exit 0), a failing case exits 1 and says which, a file's records tried (one a line, a
JSON array), parse errors named, --json for scripts, and wrong options exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from tests.detection.test_rule_tests import HOSTNAME, WHOAMI, add, new_rule
from tests.detection.test_rules_cli import Vigil, vigil  # noqa: F401  (the fixture)
from tests.detection.test_rules_service import rows

from vigil.detection.rules_import import install_starter_pack


def test_a_starter_rules_cases_pass(vigil: Vigil, world: Any) -> None:  # noqa: F811
    install_starter_pack(world.database)
    row = next(r for r in rows(world.database, "vigil-starter").values()
               if r.path.endswith("lnx_sudo_root_shell.yml"))
    done = vigil.ok("rules", "test", row.rule_uid)
    total = len(row.tests)
    assert f"rule {row.id} {row.title}: {total} of {total} passed" in done.stdout
    assert done.stdout.count("PASS") == total and "FAIL" not in done.stdout
    assert "trigger 1" in done.stdout and "near miss 1" in done.stdout
    report = orjson.loads(vigil.ok("rules", "test", str(row.id), "--json").stdout)
    assert report["passed"] == report["total"] == total and report["failed"] == 0


def test_a_failing_case_exits_1_and_says_which(vigil: Vigil, world: Any) -> None:  # noqa: F811
    rule_id = new_rule(world.database)
    empty = vigil("rules", "test", str(rule_id))
    assert empty.exit_code == 0 and "has no test cases" in empty.stderr
    add(world.database, rule_id, name="fires on whoami", expect="match", format="windows_json", record=WHOAMI)
    add(world.database, rule_id, name="wrong expectation", expect="match", format="windows_json", record=HOSTNAME)
    failed = vigil("rules", "test", str(rule_id))
    assert failed.exit_code == 1, failed.output
    assert "1 of 2 passed" in failed.stdout
    lines = {line.split()[2]: line for line in failed.stdout.splitlines()[2:]}
    assert lines["fires"].startswith("PASS") and lines["wrong"].startswith("FAIL")
    assert "must fire" in lines["wrong"] and "no match" in lines["wrong"]
    assert vigil("rules", "test", "no-such-rule").exit_code == 1


def test_a_files_records_are_tried(vigil: Vigil, world: Any, tmp_path: Path) -> None:  # noqa: F811
    rule_id = new_rule(world.database)
    lines = tmp_path / "events.ndjson"
    lines.write_text(f"{WHOAMI}\n{HOSTNAME}\n", encoding="utf-8")
    tried = vigil.ok("rules", "test", str(rule_id), "--event", str(lines))
    assert "1 of 2 records fire it" in tried.stdout
    table = tried.stdout.splitlines()[2:]
    assert len(table) == 2 and "fires" in table[0] and "no match" in table[1] and "windows_json" in table[1]
    array = tmp_path / "events.json"
    array.write_text(f"[{WHOAMI}, {WHOAMI}]", encoding="utf-8")
    must = vigil.ok("rules", "test", str(rule_id), "--event", str(array), "--format", "windows_json",
                    "--expect", "match")
    assert "2 of 2 passed" in must.stdout
    near = vigil("rules", "test", str(rule_id), "--event", str(lines), "--expect", "no_match")
    assert near.exit_code == 1 and "1 of 2 passed" in near.stdout
    syslog = tmp_path / "auth.log"
    syslog.write_text("not an access log line\n", encoding="utf-8")
    broken = vigil("rules", "test", str(rule_id), "--event", str(syslog), "--format", "web_access")
    assert broken.exit_code == 1 and "parse error" in broken.stdout
    assert "record 1: the web_access parser refused the record" in broken.stderr
    report = orjson.loads(vigil("rules", "test", str(rule_id), "--event", str(lines), "--json").stdout)
    assert [result["got"] for result in report["results"]] == ["match", "no_match"]
    assert rows(world.database, "local")[report["rule_uid"]].tests == []  # trying stores nothing


def test_wrong_options_exit_2_or_1(vigil: Vigil, world: Any, tmp_path: Path) -> None:  # noqa: F811
    rule_id = new_rule(world.database)
    events = tmp_path / "e.json"
    events.write_text(WHOAMI, encoding="utf-8")
    assert vigil("rules", "test", str(rule_id), "--format", "json").exit_code == 2
    assert vigil("rules", "test", str(rule_id), "--event", str(events), "--expect", "maybe").exit_code == 2
    unknown = vigil("rules", "test", str(rule_id), "--event", str(events), "--format", "nope")
    assert unknown.exit_code == 1 and "unknown log format 'nope'" in unknown.stderr
    missing = vigil("rules", "test", str(rule_id), "--event", str(tmp_path / "absent.json"))
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
    big = tmp_path / "big.json"
    big.write_text('{"a": "' + "x" * 70_000 + '"}', encoding="utf-8")
    too_big = vigil("rules", "test", str(rule_id), "--event", str(big))
    assert too_big.exit_code == 1 and "64 KiB" in too_big.stderr
