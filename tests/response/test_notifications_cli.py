"""`vigil notify`: a channel added with its settings, listed without its secrets, tested against a stand-in
WeCom robot (delivered, and failed with exit 1 and the reason), the delivery log, and removal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner, Result

from vigil.cli.main import app

from . import platforms


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, ["notify", *args], env=self.env)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, f"vigil notify {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var"),
                  "VIGIL_NOTIFY_RETRY_SECONDS": "0"})


def test_add_list_test_and_remove_a_channel(vigil: Vigil) -> None:
    with platforms.serve(platforms.wecom("wecom-key-8841")) as server:
        numeric = vigil.ok("channel", "add", "Numeric key", "--kind", "wecom", "--set", "key=123456")
        assert "(wecom) added" in numeric.output  # a numeric key stays text
        vigil.ok("channel", "remove", "Numeric key")
        added = vigil.ok("channel", "add", "Ops WeCom", "--kind", "wecom", "--language", "en",
                         "--set", f"url={server.url}/cgi-bin/webhook/send", "--set", "key=wecom-key-8841")
        found = re.search(r"channel (\d+) 'Ops WeCom' \(wecom\) added", added.output)
        assert found, added.output
        channel_id = found.group(1)
        listed = vigil.ok("channel", "list")
        assert "Ops WeCom" in listed.output and "key: set" in listed.output
        assert "wecom-key-8841" not in listed.output
        assert "wecom-key-8841" not in vigil.ok("channel", "list", "--json").output
        tested = vigil.ok("channel", "test", "Ops WeCom")
        assert "test message to 'Ops WeCom' delivered after 1 attempt(s)" in tested.output
        assert server.received[0].json()["markdown"]["content"].startswith("## Test message from Vigil")
        server.always_fail = True
        failed = vigil("channel", "test", channel_id)
        assert failed.exit_code == 1
        assert "not delivered after 3 attempt(s): HTTP 500" in failed.output
    log = orjson.loads(vigil.ok("deliveries", "--json").output)
    assert [(d["status"], d["attempts"]) for d in log] == [("failed", 3), ("sent", 1)]
    assert [d["status"] for d in orjson.loads(vigil.ok("deliveries", "--status", "sent", "--json").output)] == ["sent"]
    assert "Ops WeCom" in vigil.ok("deliveries", "--channel", "Ops WeCom").output
    assert f"channel {channel_id} 'Ops WeCom' removed" in vigil.ok("channel", "remove", "Ops WeCom").output
    assert vigil("channel", "test", "Ops WeCom").exit_code == 1


def test_a_bad_setting_is_refused_with_its_field(vigil: Vigil) -> None:
    refused = vigil("channel", "add", "Mail", "--kind", "email", "--set", "host=smtp.example.cn",
                    "--set", "to=oncall@example.cn", "--set", "port=99999")
    assert refused.exit_code == 1
    assert "from_address: required" in refused.output and "port: must be a port number" in refused.output
    assert vigil.ok("channel", "list", "--json").output.strip() == "[]"
    assert vigil("deliveries", "--status", "lost").exit_code == 2
