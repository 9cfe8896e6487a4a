"""What a hunt reads: which files, and the events they become (.evtx, JSON, NDJSON, gzip), with what cannot be
read reported as a ``Problem`` naming the file and the line while the rest is read."""

from __future__ import annotations

import gzip
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest

from vigil.core.errors import NotFound
from vigil.detection.hunt_files import WHOLE, Problem, find_files, native_event, read_events, split_file
from vigil.siem.parsers.base import ParseContext, ParseError
from vigil.siem.parsers.evtx import read_evtx
from vigil.siem.parsers.windows import WindowsJsonParser
from vigil.siem.parsers.windows_ecs import RESERVED

EVTX_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx"
needs_samples = pytest.mark.skipif(
    not any(EVTX_DIR.rglob("*.evtx")) if EVTX_DIR.is_dir() else True,
    reason=f"the EVTX sample set is not at {EVTX_DIR} (see the shared data README)",
)
# What the ingestion parser adds beside the native fields (ECS), which a hunt leaves out.
ECS_ADDITIONS = RESERVED | {"dll", "powershell"}


def windows_document(**event_data: Any) -> dict[str, Any]:
    return {"Event": {
        "#attributes": {"xmlns": "http://schemas.microsoft.com/win/2004/08/events/event"},
        "System": {
            "Provider": {"#attributes": {"Name": "Microsoft-Windows-Sysmon", "Guid": "5770385F"}},
            "EventID": 1, "Version": 5, "Level": 4,
            "TimeCreated": {"#attributes": {"SystemTime": "2024-05-01T10:00:00.000000Z"}},
            "EventRecordID": 42, "Correlation": None,
            "Execution": {"#attributes": {"ProcessID": 1912, "ThreadID": 996}},
            "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "WS01",
            "Security": {"#attributes": {"UserID": "S-1-5-18"}},
        },
        "EventData": event_data,
    }}


def parser_native(document: dict[str, Any]) -> dict[str, Any]:
    """The native fields ``WindowsJsonParser`` gives for a document (its ECS additions left out)."""
    event = WindowsJsonParser().parse_one(orjson.dumps(document), ParseContext(source="test"))
    return {key: value for key, value in event.items() if key not in ECS_ADDITIONS}


def events_and_problems(path: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    items = list(read_events(str(path)))
    return [i for i in items if isinstance(i, dict)], [i for i in items if isinstance(i, Problem)]


# --- Windows events: the parser's native fields, exactly ------------------------------------------


def test_a_sysmon_event_becomes_its_flat_native_fields() -> None:
    document = windows_document(Image="C:\\Windows\\System32\\whoami.exe", CommandLine="whoami /all", ProcessId=7)
    event = native_event(document)
    assert event == {
        "Provider_Name": "Microsoft-Windows-Sysmon", "Provider_Guid": "5770385F", "EventID": 1, "Version": 5,
        "Level": 4, "TimeCreated_SystemTime": "2024-05-01T10:00:00.000000Z", "EventRecordID": 42,
        "Execution_ProcessID": 1912, "Execution_ThreadID": 996, "Channel": "Microsoft-Windows-Sysmon/Operational",
        "Computer": "WS01", "Security_UserID": "S-1-5-18",
        "Image": "C:\\Windows\\System32\\whoami.exe", "CommandLine": "whoami /all", "ProcessId": 7,
    }
    assert event == parser_native(document)


@pytest.mark.parametrize("shape", [
    "qualifiers", "string ids", "unnamed data", "one unnamed data", "user data", "ecs root name", "system name",
    "separate attributes", "no event data", "nested event data", "names with spaces", "nested attribute",
    "list text", "text attributes", "null system values", "attribute named as a later field",
])
def test_unusual_shapes_give_what_the_ingestion_parser_gives(shape: str) -> None:
    document = windows_document(TargetUserName="alice")
    root, system = document["Event"], document["Event"]["System"]
    if shape == "qualifiers":
        system["EventID"] = {"#text": 4624, "#attributes": {"Qualifiers": 16384}}
    elif shape == "string ids":
        system["EventID"], system["EventRecordID"] = "4624", "99"
    elif shape == "unnamed data":
        root["EventData"] = {"Data": ["first", "second"]}
    elif shape == "one unnamed data":
        root["EventData"] = {"Data": {"#text": "only"}}
    elif shape == "user data":
        del root["EventData"]
        root["UserData"] = {"LogFileCleared": {"SubjectUserName": "bob", "SubjectDomainName": "CORP"}}
    elif shape == "ecs root name":
        root["EventData"] = {"user": "carol", "process": "x.exe", "Image": "y.exe"}
    elif shape == "system name":
        root["EventData"] = {"Computer": "other", "Channel": "spoofed"}
    elif shape == "separate attributes":
        del system["TimeCreated"]
        system["TimeCreated_attributes"] = {"SystemTime": "2024-05-01T10:00:00Z"}
    elif shape == "no event data":
        del root["EventData"]
    elif shape == "nested event data":
        root["EventData"] = {"Binary": {"Inner": {"#text": "v"}}, "Plain": 3}
    elif shape == "names with spaces":  # Defender's "Threat Name"
        root["EventData"] = {"Threat Name": "EICAR", "Path": "C:\\x"}
    elif shape == "nested attribute":
        system["Execution"] = {"#attributes": {"ProcessID": {"#text": 4}, "ThreadID": 8}}
    elif shape == "list text":
        system["Computer"] = {"#text": ["dc1", "dc2"]}
    elif shape == "text attributes":
        system["Security"] = {"#attributes": "S-1-5-18"}
    elif shape == "null system values":
        system["Correlation"], system["Keywords"] = None, {"#text": None}
    elif shape == "attribute named as a later field":
        system["Provider"] = {"#attributes": {"Name": {"nested": 1}}}
        system["Provider_Name"] = "Later"
    assert native_event(document) == parser_native(document)
    assert list(native_event(document)) == list(parser_native(document))


def test_a_document_without_a_numeric_event_id_is_refused() -> None:
    document = windows_document()
    document["Event"]["System"]["EventID"] = "not a number"
    with pytest.raises(ParseError, match="EventID"):
        native_event(document)


@needs_samples
def test_every_sample_record_matches_the_ingestion_parser_field_for_field() -> None:
    files = sorted(EVTX_DIR.rglob("*.evtx"))
    compared = 0
    for file in files:
        events, problems = events_and_problems(file)
        assert problems == []
        expected = [{k: v for k, v in e.items() if k not in ECS_ADDITIONS}
                    for e in read_evtx(file, ParseContext(source=str(file))) if isinstance(e, dict)]
        assert len(events) == len(expected), file
        for mine, theirs in zip(events, expected, strict=True):
            assert mine == theirs, file
            assert list(mine) == list(theirs)
        compared += len(events)
    assert compared == 8255


# --- JSON, NDJSON, gzip ----------------------------------------------------------------------------


def test_one_json_object_an_array_and_ndjson(tmp_path: Path) -> None:
    single = tmp_path / "one.json"
    single.write_bytes(orjson.dumps(windows_document(Image="a.exe"), option=orjson.OPT_INDENT_2))
    array = tmp_path / "many.json"
    array.write_bytes(orjson.dumps([{"message": "one"}, windows_document(Image="b.exe")]))
    lines = tmp_path / "lines.ndjson"
    lines.write_bytes(b'{"message": "x", "@timestamp": "2024-01-01T00:00:00Z"}\r\n\n{"message": "y"}\n')

    assert [e["Image"] for e in events_and_problems(single)[0]] == ["a.exe"]
    events, problems = events_and_problems(array)
    assert problems == []
    assert events[0] == {"message": "one"}  # other JSON is matched as it is
    assert events[1]["Image"] == "b.exe" and events[1]["EventID"] == 1
    assert [e["message"] for e in events_and_problems(lines)[0]] == ["x", "y"]


def test_pretty_printed_documents_one_after_another_as_evtx_dump_writes_them(tmp_path: Path) -> None:
    documents = [windows_document(Image=f"{n}.exe") for n in range(3)]
    pretty = [orjson.dumps(d, option=orjson.OPT_INDENT_2).decode() for d in documents]
    plain = tmp_path / "concatenated.json"
    plain.write_text("\n".join(pretty) + "\n", encoding="utf-8")
    dumped = tmp_path / "evtx_dump.json"
    dumped.write_text("".join(f"Record {n}\n{text}\n" for n, text in enumerate(pretty, 1)), encoding="utf-8")
    for path in (plain, dumped):
        events, problems = events_and_problems(path)
        assert problems == []
        assert [e["Image"] for e in events] == ["0.exe", "1.exe", "2.exe"]


def test_a_broken_pretty_printed_document_is_reported_and_the_next_ones_read(tmp_path: Path) -> None:
    good = orjson.dumps(windows_document(Image="ok.exe"), option=orjson.OPT_INDENT_2).decode()
    path = tmp_path / "events.json"
    path.write_text(f'{good}\n{{\n  "Event": {{\n    "System": oops\n}}\n{good}\n[1]\n', encoding="utf-8")
    events, problems = events_and_problems(path)
    assert [e["Image"] for e in events] == ["ok.exe", "ok.exe"]
    lines = good.count("\n") + 1
    assert [(p.line, p.reason.split(":")[0]) for p in problems] == [
        (lines + 3, "not JSON"), (2 * lines + 5, "expected a JSON object, got an array")]


def test_a_bad_ndjson_line_is_reported_with_its_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"n": 1}\n{"n": 2,\n[1, 2]\n{"n": 4}\n', encoding="utf-8")
    events, problems = events_and_problems(path)
    assert [e["n"] for e in events] == [1, 4]
    assert [(p.line, str(p).split(": ")[0]) for p in problems] == [(2, f"{path}:2"), (3, f"{path}:3")]
    assert "not JSON" in problems[0].reason
    assert "expected a JSON object, got an array" in problems[1].reason


def test_a_windows_document_without_event_id_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    document = windows_document()
    document["Event"]["System"]["EventID"] = None
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps([document, windows_document(Image="ok.exe")]))
    events, problems = events_and_problems(path)
    assert [e["Image"] for e in events] == ["ok.exe"]
    assert len(problems) == 1 and problems[0].reason.startswith("item 1 of the array: ")


def test_gzip_compressed_ndjson_is_read(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"n": 1}\n{"n": 2}\n'))
    assert [e["n"] for e in events_and_problems(path)[0]] == [1, 2]


def test_a_broken_gzip_file_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "events.json.gz"
    packed = gzip.compress(b'{"n": 1}\n' * 100)
    path.write_bytes(packed[: len(packed) // 2])
    events, problems = events_and_problems(path)
    assert events == []
    assert len(problems) == 1 and problems[0].reason.startswith("cannot read the file")


# --- EVTX -------------------------------------------------------------------------------------------


def sample(name: str) -> Path:
    return next(EVTX_DIR.rglob(name))


@needs_samples
def test_a_gzip_compressed_evtx_gives_the_same_events(tmp_path: Path) -> None:
    original = sample("4794_DSRM_password_change_t1098.evtx")
    packed = tmp_path / "dsrm.evtx.gz"
    packed.write_bytes(gzip.compress(original.read_bytes()))
    assert events_and_problems(packed) == events_and_problems(original)
    assert events_and_problems(original)[0]


@needs_samples
def test_a_truncated_evtx_is_reported_and_its_readable_records_kept(tmp_path: Path) -> None:
    original = max(EVTX_DIR.rglob("*.evtx"), key=lambda p: p.stat().st_size)
    whole, _ = events_and_problems(original)
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(original.read_bytes()[: 4096 + 65536 + 1000])
    events, problems = events_and_problems(cut)
    assert problems and problems[0].path == str(cut) and problems[0].reason.startswith("truncated")
    assert 0 < len(events) < len(whole)
    assert events == whole[: len(events)]


@needs_samples
def test_an_evtx_read_in_chunk_ranges_gives_every_record_once_in_order() -> None:
    path = sample("bits_openvpn.evtx")  # 16 chunks of records in a 1 MiB file
    whole, _ = events_and_problems(path)
    parts = split_file(str(path), path.stat().st_size, 3 * 65536)
    assert parts[:2] == [("chunks", 0, 3, 0), ("chunks", 3, 3, 0)] and sum(part[2] for part in parts) == 17
    read = [item for part in parts for item in read_events(str(path), part=part)]
    assert read == whole
    assert len(whole) == 1537
    assert split_file(str(path), path.stat().st_size, 2 * 1024 * 1024) == [WHOLE]  # small enough


@needs_samples
def test_only_the_first_piece_of_a_truncated_evtx_says_so(tmp_path: Path) -> None:
    original = sample("bits_openvpn.evtx")
    whole, _ = events_and_problems(original)
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(original.read_bytes()[: 4096 + 5 * 65536])
    first = list(read_events(str(cut), part=("chunks", 0, 2, 0)))
    second = list(read_events(str(cut), part=("chunks", 2, 3, 0)))
    assert [p.reason.split(":")[0] for p in first if isinstance(p, Problem)] == ["truncated"]
    assert [e for e in first if isinstance(e, dict)] == whole[:196]  # 98 records in each of the first chunks
    assert second == whole[196 : 196 + len(second)]
    assert len(second) > 200


def test_a_big_ndjson_file_is_cut_at_line_ends_and_its_parts_number_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    lines = [orjson.dumps({"n": n, "pad": "x" * (n % 50)}) for n in range(1, 401)]
    lines[250] = b'{"n": 251, broken'
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    parts = split_file(str(path), path.stat().st_size, 2000)
    assert len(parts) > 5
    assert parts[0][1] == 0 and parts[-1][2] == path.stat().st_size
    assert all(a[2] == b[1] for a, b in pairwise(parts))  # no gap, no overlap
    read = [item for part in parts for item in read_events(str(path), part=part)]
    assert read == list(read_events(str(path)))
    assert [e["n"] for e in read if isinstance(e, dict)] == [n for n in range(1, 401) if n != 251]
    assert [(p.line, p.reason.split(":")[0]) for p in read if isinstance(p, Problem)] == [(251, "not JSON")]


def test_only_ndjson_and_evtx_files_are_cut(tmp_path: Path) -> None:
    pretty = tmp_path / "pretty.json"
    pretty.write_bytes(orjson.dumps([{"n": n} for n in range(500)], option=orjson.OPT_INDENT_2))
    packed = tmp_path / "events.ndjson.gz"
    packed.write_bytes(gzip.compress(b'{"n": 1}\n' * 5000))
    text = tmp_path / "app.log"
    text.write_text("plain text log line\n" * 500, encoding="utf-8")
    for path in (pretty, packed, text):
        assert split_file(str(path), path.stat().st_size, 100) == [WHOLE], path


def test_a_file_that_is_not_evtx_nor_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "notes.log"
    path.write_text("just some text\n", encoding="utf-8")
    events, problems = events_and_problems(path)
    assert events == []
    assert [(p.line, p.reason.split(":")[0]) for p in problems] == [(1, "not JSON")]


def test_a_damaged_evtx_header_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "broken.evtx"
    path.write_bytes(b"ElfFile\x00" + b"\xff" * 5000)
    events, problems = events_and_problems(path)
    assert events == []
    assert problems and all(p.path == str(path) for p in problems)


# --- which files ------------------------------------------------------------------------------------


def test_folders_are_searched_recursively_for_log_suffixes(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/x.evtx", "a/y.JSON", "a/b/z.ndjson.gz", "a/w.jsonl", "a/v.log", "a/readme.md", "a/rule.yml"):
        (tmp_path / name).write_text("{}", encoding="utf-8")
    explicit = tmp_path / "events.txt"
    explicit.write_text("{}", encoding="utf-8")
    found = find_files([tmp_path / "a", explicit, tmp_path / "a" / "w.jsonl"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [  # a folder's files, then its subfolders
        "a/v.log", "a/w.jsonl", "a/y.JSON", "a/b/x.evtx", "a/b/z.ndjson.gz", "events.txt"]


def test_missing_paths_are_all_named(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as raised:
        find_files([tmp_path, tmp_path / "nope.evtx", tmp_path / "gone"])
    assert "nope.evtx" in raised.value.detail and "gone" in raised.value.detail
