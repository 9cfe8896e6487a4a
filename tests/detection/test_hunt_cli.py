"""`vigil hunt PATH... --rules RULES [--output table|jsonl|csv] [--min-level L] [--out FILE] [--workers N]`:
what it prints for people and tools, its stderr reports and summary, and its exit codes."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from evtx import PyEvtxParser
from typer.testing import CliRunner, Result

from vigil.cli.main import app
from vigil.detection import hunt as hunt_module

EVTX_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx"
needs_samples = pytest.mark.skipif(
    not any(EVTX_DIR.rglob("*.evtx")) if EVTX_DIR.is_dir() else True,
    reason=f"the EVTX sample set is not at {EVTX_DIR} (see the shared data README)",
)

WHOAMI_RULE = """\
title: Whoami Run
id: 0c3e4b2a-1f51-4d8e-9a7b-111111111111
status: test
description: whoami, as attackers run it after getting in
author: Test Author
references:
    - https://example.org/whoami
tags:
    - attack.discovery
    - attack.t1033
logsource:
    product: windows
    category: process_creation
detection:
    selection:
        Image|endswith: '\\whoami.exe'
    condition: selection
level: high
"""
FAILED_LOGIN_RULE = """\
title: Failed Login Message
id: 0c3e4b2a-1f51-4d8e-9a7b-222222222222
status: test
author: Other Author
logsource:
    product: vigiltest
detection:
    keywords:
        message|contains: failed password
    condition: keywords
level: low
"""
DSRM_RULE = """\
title: DSRM Password Changed
id: 0c3e4b2a-1f51-4d8e-9a7b-333333333333
status: test
author: Test Author
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 4794
    condition: selection
level: critical
"""


def sysmon_process(image: str, record_id: int, computer: str = "WS01") -> dict[str, Any]:
    """A Sysmon process creation in evtx_dump's JSON shape."""
    return {"Event": {"System": {
        "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon"}},
        "EventID": 1, "EventRecordID": record_id, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": computer, "TimeCreated": {"#attributes": {"SystemTime": f"2024-05-01T10:00:{record_id:02d}Z"}},
    }, "EventData": {"Image": image, "CommandLine": image}}}


class Hunt:
    """`vigil hunt` in this process (CliRunner), with the rule cache in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {"XDG_CACHE_HOME": str(folder / "cache")}
        self.rules = folder / "rules"
        self.rules.mkdir()

    def rule(self, name: str, text: str) -> Path:
        path = self.rules / name
        path.write_text(text, encoding="utf-8")
        return path

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["hunt", *args], env=self.env)


def jsonl(result: Result) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def hunter(tmp_path: Path) -> Hunt:
    hunter = Hunt(tmp_path)
    hunter.rule("whoami.yml", WHOAMI_RULE)
    hunter.rule("failed_login.yml", FAILED_LOGIN_RULE)
    return hunter


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    """A folder: Windows events in a JSON array, and NDJSON application events."""
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "windows.json").write_bytes(orjson.dumps([
        sysmon_process("C:\\Windows\\System32\\whoami.exe", 7),
        sysmon_process("C:\\Windows\\notepad.exe", 8),
        sysmon_process("C:\\Windows\\System32\\WHOAMI.EXE", 9, computer="WS02"),
    ]))
    (folder / "app.ndjson").write_text(
        '{"@timestamp": "2024-05-01T11:00:00Z", "message": "sshd: Failed password for root"}\n'
        '{"timestamp": "2024-05-01T11:00:01Z", "message": "accepted key"}\n', encoding="utf-8")
    return folder


# --- outputs ----------------------------------------------------------------------------------------


def test_jsonl_gives_one_record_per_match_with_rule_time_file_and_windows_fields(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    assert result.exit_code == 0, result.output
    records = jsonl(result)
    assert len(records) == 3
    whoami = [r for r in records if r["rule"]["title"] == "Whoami Run"]
    assert [(r["EventRecordID"], r["Computer"]) for r in whoami] == [(7, "WS01"), (9, "WS02")]
    first = whoami[0]
    assert first["rule"] == {"id": "0c3e4b2a-1f51-4d8e-9a7b-111111111111", "title": "Whoami Run", "level": "high",
                             "author": "Test Author", "references": ["https://example.org/whoami"],
                             "tags": ["attack.discovery", "attack.t1033"]}
    assert first["@timestamp"] == "2024-05-01T10:00:07Z"
    assert first["file"] == str(logs / "windows.json")
    assert (first["Channel"], first["EventID"]) == ("Microsoft-Windows-Sysmon/Operational", 1)
    assert first["event"]["Image"] == "C:\\Windows\\System32\\whoami.exe"
    (login,) = [r for r in records if r["rule"]["level"] == "low"]
    assert login["@timestamp"] == "2024-05-01T11:00:00Z"
    assert login["file"] == str(logs / "app.ndjson")
    assert "Channel" not in login and "EventID" not in login
    assert login["event"]["message"] == "sshd: Failed password for root"


def test_csv_has_a_header_and_a_row_per_match(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["@timestamp", "rule.id", "rule.title", "rule.level", "rule.author", "rule.references", "file",
                       "Channel", "EventID", "EventRecordID", "Computer"]
    assert len(rows) == 4
    whoami = [row for row in rows[1:] if row[2] == "Whoami Run"]
    assert whoami[0] == ["2024-05-01T10:00:07Z", "0c3e4b2a-1f51-4d8e-9a7b-111111111111", "Whoami Run", "high",
                         "Test Author", "https://example.org/whoami", str(logs / "windows.json"),
                         "Microsoft-Windows-Sysmon/Operational", "1", "7", "WS01"]


def test_the_table_shows_time_level_rule_computer_channel_and_file(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules))
    assert result.exit_code == 0, result.output
    matches, rules = result.stdout.split("\n\n")
    lines = matches.splitlines()
    assert lines[0].split() == ["TIME", "LEVEL", "RULE", "COMPUTER", "CHANNEL/EVENTID", "FILE"]
    assert len(lines) == 4
    assert lines[1].startswith("2024-05-01 10:00:07  high")  # sorted by time
    assert "Whoami Run" in lines[1] and "WS01" in lines[1] and "Microsoft-Windows-Sysmon/Operational/1" in lines[1]
    assert lines[1].endswith(str(logs / "windows.json"))
    assert lines[3].startswith("2024-05-01 11:00:00  low") and "Failed Login Message" in lines[3]
    # Each rule once, with its id and author (the Detection Rule License's attribution).
    assert [line.split("  ")[0] for line in rules.splitlines()] == ["RULE", "Failed Login Message", "Whoami Run"]
    assert "0c3e4b2a-1f51-4d8e-9a7b-111111111111" in rules and "Test Author" in rules and "Other Author" in rules


def test_min_level_leaves_out_the_lower_rules(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--min-level", "high")
    assert result.exit_code == 0, result.output
    assert {r["rule"]["level"] for r in jsonl(result)} == {"high"}
    assert "1 rules" in result.stderr


def test_out_writes_the_matches_to_a_file(hunter: Hunt, logs: Path, tmp_path: Path) -> None:
    target = tmp_path / "matches.jsonl"
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--out", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert len(target.read_text(encoding="utf-8").splitlines()) == 3


# --- summary, reports, exit codes ----------------------------------------------------------------------


def test_the_summary_on_stderr_counts_files_events_rules_and_matches(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("hunt: 2 files, 5 events, 2 rules, 3 matches (2 high, 1 low) in ")
    assert summary.endswith(" s")


def test_no_match_still_exits_0(hunter: Hunt, tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.jsonl"
    quiet.write_text('{"message": "all good"}\n', encoding="utf-8")
    result = hunter(str(quiet), "--rules", str(hunter.rules), "--output", "jsonl")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "1 files, 1 events, 2 rules, 0 matches in" in result.stderr


def test_a_missing_path_exits_1_and_says_which(hunter: Hunt, logs: Path) -> None:
    result = hunter(str(logs), str(logs / "nope.evtx"), "--rules", str(hunter.rules))
    assert result.exit_code == 1
    assert "no such file or folder" in result.stderr and "nope.evtx" in result.stderr
    assert result.stdout == ""


def test_no_rule_loaded_exits_1_and_shows_why(hunter: Hunt, logs: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yml").write_text("title: Bad\ndetection: [unclosed\n", encoding="utf-8")
    result = hunter(str(logs), "--rules", str(broken))
    assert result.exit_code == 1
    assert f"{broken / 'bad.yml'}:" in result.stderr
    assert "no rule loaded" in result.stderr


def test_a_broken_rule_is_reported_and_the_others_hunt(hunter: Hunt, logs: Path) -> None:
    bad = hunter.rule("bad.yml", "title: Bad\nlogsource: {product: windows}\ndetection:\n  condition: nothing\n")
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    assert result.exit_code == 0, result.output
    assert str(bad) in result.stderr
    assert len(jsonl(result)) == 3
    assert "1 rules not loaded" in result.stderr


def test_an_unwritable_output_file_exits_1(hunter: Hunt, logs: Path, tmp_path: Path) -> None:
    result = hunter(str(logs), "--rules", str(hunter.rules), "--out", str(tmp_path / "no" / "such" / "dir.txt"))
    assert result.exit_code == 1
    assert "cannot write" in result.stderr


def test_a_bad_json_line_is_reported_and_the_rest_hunted(hunter: Hunt, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"message": "Failed password for a"}\n{"message": "Failed pass\n'
                    '{"message": "Failed password for b"}\n', encoding="utf-8")
    result = hunter(str(path), "--rules", str(hunter.rules), "--output", "jsonl")
    assert result.exit_code == 0, result.output
    assert [r["event"]["message"] for r in jsonl(result)] == ["Failed password for a", "Failed password for b"]
    assert f"{path}:2: not JSON" in result.stderr
    assert "2 events" in result.stderr and "1 unreadable parts" in result.stderr


def test_the_engine_image_is_kept_made_again_when_damaged_and_follows_rule_edits(hunter: Hunt, logs: Path) -> None:
    first = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    images = list((hunter.folder / "cache").rglob("engine-*.pickle"))
    assert len(images) == 1
    again = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")  # from the image
    assert again.exit_code == 0 and again.stdout == first.stdout
    images[0].write_bytes(b"\x80\x05 not an image")  # damaged: made again, the hunt unchanged
    damaged = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    assert damaged.exit_code == 0 and damaged.stdout == first.stdout
    assert images[0].read_bytes()[:16] != b"\x80\x05 not an image"[:16]
    # A rule edited: another image, with the edit in force (a level filter makes its own image too).
    hunter.rule("whoami.yml", WHOAMI_RULE.replace("whoami.exe", "notepad.exe"))
    edited = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    assert [r["EventRecordID"] for r in jsonl(first) if r["rule"]["title"] == "Whoami Run"] == [7, 9]
    assert [r["EventRecordID"] for r in jsonl(edited) if r["rule"]["title"] == "Whoami Run"] == [8]
    assert len(list((hunter.folder / "cache").rglob("engine-*.pickle"))) == 2


def test_workers_give_the_same_output_in_the_same_order(
    hunter: Hunt, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for number in range(6):
        (logs / f"more{number}.json").write_bytes(orjson.dumps(
            [sysmon_process("C:\\Windows\\System32\\whoami.exe", record) for record in range(number + 1)]))
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 1)  # every file a task of its own: the pool has work to share
    alone = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "1")
    shared = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "3")
    assert alone.exit_code == shared.exit_code == 0, shared.output
    assert len(jsonl(alone)) == 3 + sum(range(1, 7))
    assert shared.stdout == alone.stdout


def test_files_of_the_same_name_in_several_folders_come_out_in_file_order(
    hunter: Hunt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Workers hunt the files of one name together (each machine's sysmon.json): the output still follows
    # the files as given, folder by folder, with each file's problems where the file is.
    folder = tmp_path / "hosts"
    for host in ("ws1", "ws2", "ws3"):
        (folder / host).mkdir(parents=True)
        for name, first in (("sysmon.json", 0), ("other.json", 10)):
            (folder / host / name).write_bytes(orjson.dumps(
                [sysmon_process("C:\\Windows\\System32\\whoami.exe", first + n, computer=host) for n in range(3)]))
        (folder / host / "broken.ndjson").write_text('{"message": "ok"}\n{"message": \n', encoding="utf-8")
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 2000)  # a few files a task: the pool has work to share
    alone = hunter(str(folder), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "1")
    shared = hunter(str(folder), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "3")
    assert alone.exit_code == shared.exit_code == 0, shared.output
    assert shared.stdout == alone.stdout
    assert [(Path(record["file"]).relative_to(folder).as_posix(), record["EventRecordID"])
            for record in jsonl(shared)] == [
        (f"{host}/{name}", first + n)
        for host in ("ws1", "ws2", "ws3") for name, first in (("other.json", 10), ("sysmon.json", 0)) for n in range(3)]
    problems = [line for line in shared.stderr.splitlines() if "not JSON" in line]
    assert [Path(line.split(":")[0]).parent.name for line in problems] == ["ws1", "ws2", "ws3"]


def test_spawned_workers_load_the_rules_themselves_and_give_the_same_output(
    hunter: Hunt, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 1)
    forked = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "2")
    # As on macOS and Windows: no fork, so each worker starts afresh and reads the rule cache.
    monkeypatch.setattr(hunt_module.multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    spawned = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "2")
    assert forked.exit_code == spawned.exit_code == 0, spawned.output
    assert len(jsonl(spawned)) == 3
    assert spawned.stdout == forked.stdout


def test_a_worker_that_dies_ends_the_hunt_with_exit_1_instead_of_hanging(
    hunter: Hunt, logs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = hunt_module.read_events

    def crashing(path: str, **options: Any) -> Iterator[Any]:
        if path.endswith("app.ndjson"):
            os._exit(3)  # as a crash of the native reader would end the process
        return read(path, **options)

    monkeypatch.setattr(hunt_module, "read_events", crashing)  # the forked workers inherit it
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 1)
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "2")
    assert result.exit_code == 1
    assert "a hunt worker process died" in result.stderr


# --- real EVTX files --------------------------------------------------------------------------------


def records_with_event_id(path: Path, event_id: int) -> int:
    count = 0
    for record in PyEvtxParser(str(path)).records_json():
        system = orjson.loads(record["data"])["Event"]["System"]
        found = system["EventID"]
        count += (found["#text"] if isinstance(found, dict) else found) == event_id and system["Channel"] == "Security"
    return count


@needs_samples
def test_a_rule_fires_on_real_evtx_files_with_windows_fields(hunter: Hunt, monkeypatch: pytest.MonkeyPatch) -> None:
    hunter.rule("dsrm.yml", DSRM_RULE)
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 64 * 1024)
    folder = EVTX_DIR / "EVTX-ATTACK-SAMPLES" / "Credential Access"
    expected = Counter({str(path): n for path in folder.rglob("*.evtx") if (n := records_with_event_id(path, 4794))})
    assert expected
    result = hunter(str(folder), "--rules", str(hunter.rules / "dsrm.yml"), "--output", "jsonl", "--workers", "2")
    assert result.exit_code == 0, result.output
    records = jsonl(result)
    assert Counter(r["file"] for r in records) == expected
    assert all((r["Channel"], r["EventID"], r["rule"]["level"]) == ("Security", 4794, "critical") for r in records)
    assert all(isinstance(r["EventRecordID"], int) and r["Computer"] and r["@timestamp"] for r in records)
    files = sum(1 for _ in folder.rglob("*.evtx"))
    assert f"hunt: {files} files, " in result.stderr


@needs_samples
def test_a_big_evtx_read_in_pieces_by_several_workers_gives_the_same_output(
    hunter: Hunt, monkeypatch: pytest.MonkeyPatch
) -> None:
    hunter.rule("dsrm.yml", DSRM_RULE)
    rules = hunter.rules
    files = [str(next(EVTX_DIR.rglob(name))) for name in ("bits_openvpn.evtx", "4794_DSRM_password_change_t1098.evtx")]
    whole = hunter(*files, "--rules", str(rules), "--output", "jsonl", "--workers", "1")
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 4 * 65536)  # bits_openvpn.evtx: 1 MiB, so 5 pieces
    pieces = hunter(*files, "--rules", str(rules), "--output", "jsonl", "--workers", "3")
    assert whole.exit_code == pieces.exit_code == 0, pieces.output
    assert jsonl(whole)
    assert pieces.stdout == whole.stdout
    counts = whole.stderr.strip().splitlines()[-1].split(" matches")[0]
    assert counts.startswith("hunt: 2 files, 1,")  # bits_openvpn.evtx alone holds 1,537 records
    assert pieces.stderr.strip().splitlines()[-1].split(" matches")[0] == counts


def test_a_big_ndjson_file_hunted_in_parts_gives_the_same_output_and_line_numbers(
    hunter: Hunt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "app.ndjson"
    lines = [f'{{"n": {n}, "message": "{"Failed password" if n % 7 == 0 else "ok"} for user{n}"}}' for n in range(3000)]
    lines[1234] = '{"n": 1234, "message": '
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole = hunter(str(path), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "1")
    monkeypatch.setattr(hunt_module, "TASK_BYTES", 8 * 1024)  # about a dozen parts
    parts = hunter(str(path), "--rules", str(hunter.rules), "--output", "jsonl", "--workers", "3")
    assert whole.exit_code == parts.exit_code == 0, parts.output
    assert len(jsonl(whole)) == len([n for n in range(3000) if n % 7 == 0])
    assert parts.stdout == whole.stdout
    assert f"{path}:1235: not JSON" in parts.stderr
    assert "1 files, 2,999 events" in parts.stderr


@needs_samples
def test_a_truncated_evtx_is_reported_and_the_rest_hunted(hunter: Hunt, tmp_path: Path) -> None:
    hunter.rule("dsrm.yml", DSRM_RULE)
    original = next(EVTX_DIR.rglob("4794_DSRM_password_change_t1098.evtx"))
    biggest = max(EVTX_DIR.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    logs = tmp_path / "mixed"
    logs.mkdir()
    (logs / "dsrm.evtx").write_bytes(original.read_bytes())
    (logs / "cut.evtx").write_bytes(biggest.read_bytes()[: 4096 + 65536 + 5000])
    result = hunter(str(logs), "--rules", str(hunter.rules), "--output", "jsonl")
    assert result.exit_code == 0, result.output
    assert f"{logs / 'cut.evtx'}: truncated" in result.stderr
    assert [r["file"] for r in jsonl(result)] == [str(logs / "dsrm.evtx")] * records_with_event_id(original, 4794)
    events = int(result.stderr.split(" events")[0].rsplit(", ", 1)[-1])
    assert events > sum(1 for _ in PyEvtxParser(str(original)).records_json())  # the cut file's first chunk too


# --- the installed command ----------------------------------------------------------------------------


def test_vigil_hunt_is_a_top_level_command_of_the_installed_script(hunter: Hunt, logs: Path) -> None:
    script = Path(sys.executable).parent / "vigil"
    done = subprocess.run([str(script), "hunt", str(logs), "--rules", str(hunter.rules), "--output", "jsonl"],
                          capture_output=True, text=True, env={"XDG_CACHE_HOME": str(hunter.folder / "cache"),
                                                               "PATH": "/usr/bin:/bin"}, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 3
    assert "3 matches" in done.stderr


def test_the_installed_script_ends_with_the_hunts_exit_code(hunter: Hunt, tmp_path: Path) -> None:
    """The script ends the process at once after a hunt (no interpreter teardown): the exit code and the
    last words on stderr still come through."""
    script = Path(sys.executable).parent / "vigil"
    done = subprocess.run([str(script), "hunt", str(tmp_path / "absent"), "--rules", str(hunter.rules)],
                          capture_output=True, text=True, env={"XDG_CACHE_HOME": str(hunter.folder / "cache"),
                                                               "PATH": "/usr/bin:/bin"}, check=False, timeout=120)
    assert done.returncode == 1
    assert f"error: no such file or folder: {tmp_path / 'absent'}" in done.stderr
