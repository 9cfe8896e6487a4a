"""Real .evtx files (EVTX-ATTACK-SAMPLES in ../shared/data/evtx) through iter_evtx_records and WindowsJsonParser;
damaged files are reported failures, never a crash."""

from __future__ import annotations

import os
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil.siem.parsers.base import ParseContext, ParseFailure
from vigil.siem.parsers.evtx import is_evtx, iter_evtx_records, read_evtx

EVTX_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx"
# What this set holds (every record of the 277 files; the README says "about 8,255").
EXPECTED_RECORDS = 8255
CTX = ParseContext(source="evtx-samples")

needs_samples = pytest.mark.skipif(
    not any(EVTX_DIR.rglob("*.evtx")) if EVTX_DIR.is_dir() else True,
    reason=f"the EVTX sample set is not at {EVTX_DIR} (see the shared data README)",
)


def sample_files() -> list[Path]:
    return sorted(EVTX_DIR.rglob("*.evtx"))


@needs_samples
def test_every_record_of_the_sample_set_parses() -> None:
    files = sample_files()
    readme = (EVTX_DIR / "README.md").read_text(encoding="utf-8")
    about = re.search(r"(\d+) `\.evtx` files \(about ([\d,]+) records", readme)
    assert about is not None
    assert len(files) == int(about.group(1))
    assert int(about.group(2).replace(",", "")) == EXPECTED_RECORDS
    failures: list[ParseFailure] = []
    channels: Counter[str | None] = Counter()
    events = 0
    for file in files:
        for item in read_evtx(file, CTX):
            if isinstance(item, ParseFailure):
                failures.append(item)
                continue
            events += 1
            assert {"Channel", "EventID", "EventRecordID"} <= item.keys()
            assert isinstance(item["EventID"], int)
            assert isinstance(item["EventRecordID"], int)
            assert item["@timestamp"].utcoffset().total_seconds() == 0
            assert item["event"]["module"] == "windows"
            assert item["event"]["code"] == str(item["EventID"])
            channels[item["Channel"]] += 1
    assert failures == []
    assert events == EXPECTED_RECORDS
    # 415 records (ETW traces saved as .evtx) carry no Channel at all; every other one names its channel.
    assert channels[None] == 415
    assert channels["Microsoft-Windows-Sysmon/Operational"] > 1000
    assert channels["Security"] > 1000


@needs_samples
def test_sysmon_process_creation_from_a_real_file() -> None:
    events = [e for f in sample_files() for e in read_evtx(f, CTX) if not isinstance(e, ParseFailure)]
    sysmon = "Microsoft-Windows-Sysmon/Operational"
    creation = next(e for e in events if e.get("Channel") == sysmon and e["EventID"] == 1)
    assert creation["process"]["executable"] == creation["Image"]
    assert creation["process"]["command_line"] == creation["CommandLine"]
    assert creation["process"]["parent"]["executable"] == creation["ParentImage"]
    assert creation["event"]["category"] == ["process"]
    logons = [e for e in events if e.get("Channel") == "Security" and e["EventID"] == 4624]
    assert logons
    assert all(e["event"]["outcome"] == "success" and "LogonType" in e for e in logons)


@needs_samples
def test_truncated_and_damaged_files_are_reported_not_raised(tmp_path: Path) -> None:
    real = max(sample_files(), key=lambda p: p.stat().st_size)
    data = real.read_bytes()
    assert is_evtx(data[:4096])
    truncated = tmp_path / "truncated.evtx"
    truncated.write_bytes(data[: 10 * 1024])
    items = list(iter_evtx_records(truncated))
    failures = [i for i in items if isinstance(i, ParseFailure)]
    assert len(failures) == 1
    assert failures[0].reason.startswith("truncated.evtx: truncated: the header declares")
    assert failures[0].source == str(truncated)
    assert failures[0].parser == "evtx"

    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(data[:70000] + random.Random(3).randbytes(5000) + data[75000:])
    results = list(read_evtx(damaged, CTX))
    failures = [r for r in results if isinstance(r, ParseFailure)]
    events = [r for r in results if not isinstance(r, ParseFailure)]
    assert len(failures) == 1
    assert failures[0].reason.startswith("damaged.evtx: Failed to parse chunk")
    assert len(events) > 0  # the chunks before and after the damage are still read
    assert len(events) < len(list(read_evtx(real, CTX)))

    named = ParseContext(source="dc01-upload")
    failures = [r for r in read_evtx(damaged, named) if isinstance(r, ParseFailure)]
    assert [f.source for f in failures] == ["dc01-upload"]

    header_only = tmp_path / "header.evtx"
    header_only.write_bytes(data[:4096])
    reasons = [i.reason for i in iter_evtx_records(header_only) if isinstance(i, ParseFailure)]
    assert len(reasons) == 1
    assert reasons[0].startswith("header.evtx: truncated: the header declares")


def test_junk_empty_and_missing_files_are_reported(tmp_path: Path) -> None:
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(os.urandom(20000))
    assert not is_evtx(b"MZ\x90\x00" + bytes(8))
    empty = tmp_path / "empty.evtx"
    empty.write_bytes(b"")
    reasons = {
        path.name: [i.reason for i in iter_evtx_records(path) if isinstance(i, ParseFailure)]
        for path in (junk, empty, tmp_path / "missing.evtx")
    }
    assert reasons["junk.evtx"][0].startswith("junk.evtx: not an EVTX file (starts with")
    assert reasons["empty.evtx"] == ["empty.evtx: not an EVTX file (starts with b'', not b'ElfFile\\x00')"]
    assert reasons["missing.evtx"] == ["missing.evtx: cannot read the file: No such file or directory"]


@needs_samples
def test_fuzz_mutated_files_never_raise(tmp_path: Path) -> None:
    """Damaged copies of real files: every failure is reported with the file's name, nothing raises."""
    real = sorted(sample_files(), key=lambda p: p.stat().st_size)[len(sample_files()) // 2]
    data = real.read_bytes()
    target = tmp_path / "mutated.evtx"

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edits=st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255), st.booleans()), max_size=12))
    def run(edits: list[tuple[int, int, bool]]) -> None:
        blob = bytearray(data)
        for position, value, cut in edits:
            if cut:
                del blob[position: position + value * 16]
            elif position < len(blob):
                blob[position] = value
        target.write_bytes(bytes(blob))
        for item in read_evtx(target, CTX):
            if isinstance(item, ParseFailure):
                assert item.reason.startswith("mutated.evtx: ")
                assert "parser error" not in item.reason
            else:
                assert isinstance(item["EventID"], int)

    run()
