"""`vigil intel`: import (refused items listed), the retro-hunt after it, indicators, lookup, sightings and
marking a false positive into the allow-list, actors, export, feeds; against real stores in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.core.config import load_settings
from vigil.siem.store.duckdb import DuckDBEventStore


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, ["intel", *args], env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"vigil intel {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir=tmp_path / "var", database_url=database_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    events = DuckDBEventStore(settings.events_path)
    events.append([{"@timestamp": "2026-11-28T09:00:00Z", "destination": {"ip": "91.92.109.44"},
                    "host": {"hostname": "pc-cli-1"}}], unit_id=world.hq, source="fw")
    events.close()
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(settings.data_dir),
                  "VIGIL_INTEL_LOOKBACK_DAYS": "3650"})


def test_import_then_retro_hunt_then_mark_a_false_positive(vigil: Vigil, tmp_path: Path) -> None:
    feed = tmp_path / "list.txt"
    feed.write_text("91.92.109.44\nnot an indicator!\n45.9.148.0/24\n", encoding="utf-8")
    imported = vigil.ok("import", str(feed), "-f", "lines")
    assert "2 indicators (2 new, 0 known)" in imported.output and "1 refused" in imported.output
    assert "refused: line 2:" in imported.output
    assert "retro-hunt: 2 indicators" in imported.output and "1 sightings, 1 alerts" in imported.output
    listed = orjson.loads(vigil.ok("indicators", "--type", "ipv4", "--json").output)
    assert [i["value"] for i in listed["items"]] == ["91.92.109.44"]
    assert "sighting 1: destination.ip=91.92.109.44 x1" in vigil.ok("lookup", "91.92.109[.]44").output
    sightings = orjson.loads(vigil.ok("sightings", "--retroactive", "--json").output)
    assert [(s["value"], s["host"], s["retroactive"]) for s in sightings] == [("91.92.109.44", "pc-cli-1", True)]
    marked = vigil.ok("mark", str(sightings[0]["id"]), "--as", "false-positive", "--allow", "--reason", "lab box")
    assert "allow-listed" in marked.output
    assert "lab box" in vigil.ok("allowlist").output
    assert vigil("mark", "999", "--as", "true-positive").exit_code == 1


def test_an_unknown_format_names_the_formats_and_the_presets(vigil: Vigil, tmp_path: Path) -> None:
    feed = tmp_path / "ipblocklist.csv"
    feed.write_text('"2026-10-01 10:00:00","203.0.113.5","443","online","2026-10-02","QakBot"\n', encoding="utf-8")
    refused = vigil("import", str(feed), "-f", "feodo")
    assert refused.exit_code == 2 and "'feodo'" in refused.output and "feodotracker" in refused.output
    assert "2 indicators" not in refused.output
    assert "1 indicators (1 new, 0 known)" in vigil.ok("import", str(feed), "-f", "feodotracker").output


def test_actors_export_and_feeds(vigil: Vigil, tmp_path: Path) -> None:
    assert "ATT&CK groups, campaigns and software recorded" in vigil.ok("attack-import").output
    assert "G0007" in vigil.ok("actors", "--kind", "intrusion-set", "-q", "APT28").output
    out = tmp_path / "ours.json"
    vigil.ok("export", "--source", "import:list.txt", "-o", str(out))
    assert orjson.loads(out.read_bytes())["type"] == "bundle"
    added = vigil.ok("feed", "add", "Feodo", "--preset", "feodotracker", "--interval", "30")
    assert "every 30 min" in added.output
    assert "Feodo" in vigil.ok("feed", "list").output
    refused = vigil("feed", "add", "Bad", "--format", "lines", "--url", "ftp://example.org/x")
    assert refused.exit_code == 1 and "http:// or https://" in refused.output
