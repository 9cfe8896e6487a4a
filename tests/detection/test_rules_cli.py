"""`vigil rules import|list|show|enable|disable|set|packs` against a real records store: the import diff on
stdout and the rules that did not load on stderr, filters, --json, exit codes, and the audit trail."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.api.support import audit_records
from tests.detection.test_rules_service import sigma_rule, uid_of, write
from typer.testing import CliRunner, Result

from vigil.cli.main import app


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args), env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"vigil {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})


@pytest.fixture
def pack_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sigma-rules"
    write(folder, "windows/whoami.yml", sigma_rule("Whoami", level="medium"))
    write(folder, "windows/net.yml", sigma_rule("Net Use", status="test", image="\\net.exe",
                                                tags=("attack.lateral-movement", "attack.t1021.002")))
    write(folder, "windows/noisy.yml", sigma_rule("Noisy", status="experimental", image="\\cmd.exe"))
    write(folder, "windows/broken.yml", "title: Broken\ndetection: [\n")
    return folder


def listed(vigil: Vigil, *args: str) -> dict[str, dict[str, Any]]:
    return {item["title"]: item for item in orjson.loads(vigil.ok("rules", "list", "--json", *args).stdout)}


def test_import_prints_what_changed_and_the_rules_that_did_not_load(vigil: Vigil, pack_dir: Path,
                                                                    world: Any) -> None:
    first = vigil.ok("rules", "import", str(pack_dir))
    assert "pack sigma-rules imported" in first.stdout
    assert "3 added, 0 updated, 0 removed, 0 unchanged, 1 not loadable" in first.stdout
    assert "1 new rules left disabled: experimental" in first.stdout
    assert "not loaded: windows/broken.yml:3: broken YAML" in first.stderr
    write(pack_dir, "windows/whoami.yml", sigma_rule("Whoami", level="high"))
    (pack_dir / "windows" / "net.yml").unlink()
    second = vigil.ok("rules", "import", str(pack_dir), "--pack", "sigma-rules")
    assert "pack sigma-rules updated" in second.stdout
    assert "updated:\n  Whoami (windows/whoami.yml)" in second.stdout
    assert "removed:\n  Net Use (windows/net.yml)" in second.stdout
    assert "0 added, 1 updated, 1 removed, 1 unchanged, 1 not loadable" in second.stdout
    records = audit_records(world.database, action="detection.rule_pack.import")
    assert len(records) == 2 and records[0].actor.startswith("cli:")


def test_import_options_json_and_refusals(vigil: Vigil, pack_dir: Path, tmp_path: Path) -> None:
    result = orjson.loads(vigil.ok("rules", "import", str(pack_dir), "--pack", "quiet", "--enable", "none",
                                   "--json").stdout)
    assert result["pack"]["name"] == "quiet" and len(result["left_disabled"]) == 3
    assert result["errors"] == [e for e in result["errors"] if e.startswith("windows/broken.yml:3:")] != []
    assert not any(item["enabled"] for item in listed(vigil, "--pack", "quiet").values())
    missing = vigil("rules", "import", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "no such file or folder" in missing.stderr
    bad = vigil("rules", "import", str(pack_dir), "--enable", "some")
    assert bad.exit_code == 2
    bomb = tmp_path / "bad.zip"
    bomb.write_bytes(b"not a zip")
    refused = vigil("rules", "import", str(bomb))
    assert refused.exit_code == 1 and "not a readable zip archive" in refused.stderr


def test_list_show_filters_and_json(vigil: Vigil, pack_dir: Path) -> None:
    vigil.ok("rules", "import", str(pack_dir))
    assert set(listed(vigil)) == {"Whoami", "Net Use", "Noisy"}
    assert set(listed(vigil, "--technique", "T1021")) == {"Net Use"}
    assert set(listed(vigil, "--disabled")) == {"Noisy"}
    assert set(listed(vigil, "--level", "medium", "--enabled")) == {"Whoami"}
    table = vigil.ok("rules", "list", "-q", "who").stdout
    assert table.splitlines()[0].split()[:4] == ["ID", "ENABLED", "LEVEL", "STATUS"]
    assert "Whoami" in table and "Noisy" not in table
    shown = vigil.ok("rules", "show", uid_of("Whoami")).stdout
    assert "author:          Test Author" in shown and "reference:       https://example.org/rules" in shown
    assert "Image|endswith: '\\whoami.exe'" in shown
    as_json = orjson.loads(vigil.ok("rules", "show", str(listed(vigil)["Noisy"]["id"]), "--json").stdout)
    assert as_json["status"] == "experimental" and as_json["yaml"].startswith("title: Noisy")
    unknown = vigil("rules", "show", "no-such-rule")
    assert unknown.exit_code == 1 and "no detection rule" in unknown.stderr
    packs = orjson.loads(vigil.ok("rules", "packs", "--json").stdout)
    assert [(p["name"], p["rule_count"], len(p["errors"])) for p in packs] == [("sigma-rules", 3, 1)]
    assert "sigma-rules" in vigil.ok("rules", "packs").stdout


def test_enable_disable_and_set_are_audited_and_all_or_nothing(vigil: Vigil, pack_dir: Path, world: Any) -> None:
    vigil.ok("rules", "import", str(pack_dir))
    rules = listed(vigil)
    noisy, whoami = str(rules["Noisy"]["id"]), str(rules["Whoami"]["id"])
    assert "1 rules enabled (1 already were)" in vigil.ok("rules", "enable", noisy, whoami).stdout
    refused = vigil("rules", "disable", noisy, "999999")
    assert refused.exit_code == 1 and "999999" in refused.stderr
    assert listed(vigil)["Noisy"]["enabled"] is True  # nothing changed
    vigil.ok("rules", "disable", uid_of("Noisy"))
    assert listed(vigil)["Noisy"]["enabled"] is False
    assert "level critical" in vigil.ok("rules", "set", whoami, "--level", "critical", "--notes", "watch").stdout
    assert (listed(vigil)["Whoami"]["effective_level"], listed(vigil)["Whoami"]["notes"]) == ("critical", "watch")
    assert "LEVEL" in vigil.ok("rules", "list").stdout and "critical *" in vigil.ok("rules", "list").stdout
    assert "level medium" in vigil.ok("rules", "set", whoami, "--level", "").stdout
    bad = vigil("rules", "set", whoami, "--level", "severe")
    assert bad.exit_code == 1 and "level_override" in bad.stderr
    assert vigil("rules", "set", whoami).exit_code == 2
    actions = [r.action for r in audit_records(world.database) if r.action.startswith("detection.rule.")]
    assert actions == ["detection.rule.enable", "detection.rule.disable", "detection.rule.update",
                       "detection.rule.update"]
