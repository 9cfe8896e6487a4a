"""Reading log files into the SIEM (``vigil.siem.ingest``): folders, compressed files, bad files and EVTX,
through the real spool, pipeline and DuckDB store."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.siem.ingest import (
    FileIngester,
    FileResult,
    LineReader,
    LocalSink,
    default_source,
    file_siem,
    ingest_paths,
    open_siem_for_files,
)
from vigil.siem.runtime import Siem
from vigil.siem.search import compile_text
from vigil.siem.store.base import StoredEvent
from vigil.siem.store.duckdb import DuckDBEventStore

EVTX_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx" / "EVTX-ATTACK-SAMPLES"
NO_EVTX = f"the shared EVTX set is not at {EVTX_SET}"

NGINX = (
    '203.0.113.9 - - [28/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 512 "-" "Mozilla/5.0"\n'
    '203.0.113.9 - - [28/Nov/2026:10:00:01 +0800] "GET /.env HTTP/1.1" 404 162 "-" "Mozilla/5.00 (Nikto/2.5.0)"\n'
    '198.51.100.4 - - [28/Nov/2026:10:00:02 +0800] "POST /login HTTP/1.1" 302 0 "-" "curl/8.5.0"\n'
)
AUTH = (
    "Nov 28 10:00:00 jump01 sshd[812]: Failed password for root from 203.0.113.66 port 40022 ssh2\n"
    "Nov 28 10:00:03 jump01 sshd[812]: Failed password for root from 203.0.113.66 port 40022 ssh2\n"
    "Nov 28 10:00:09 jump01 sshd[813]: Accepted password for deploy from 203.0.113.66 port 40122 ssh2\n"
)
NDJSON = '{"message": "first", "host": {"name": "app1"}}\nthis line is not JSON\n{"message": "third"}\n'


@pytest.fixture
def siem(settings: Settings, database: Database) -> Iterator[Siem]:
    runtime = file_siem(settings, database)
    yield runtime
    runtime.stop()


def ingest(siem: Siem, *paths: Path, **options: str) -> list[FileResult]:
    return list(ingest_paths(siem, list(paths), **options))  # type: ignore[arg-type]


def stored(settings: Settings, query: str = "") -> list[StoredEvent]:
    store = DuckDBEventStore(settings.events_path)
    try:
        compiled = compile_text(query)
        return store.search(compiled.sql, compiled.params, limit=10_000, order="asc")
    finally:
        store.close()


def by_name(results: list[FileResult]) -> dict[str, FileResult]:
    return {Path(result.path).name: result for result in results}


def logs_folder(root: Path) -> Path:
    folder = root / "logs"
    (folder / "nginx").mkdir(parents=True)
    (folder / "nginx" / "access.log").write_text(NGINX)
    (folder / "auth.log.1.gz").write_bytes(gzip.compress(AUTH.encode()))
    (folder / "app.ndjson").write_text(NDJSON)
    (folder / "core.bin").write_bytes(bytes(range(256)) * 40)
    (folder / ".hidden.log").write_text(NGINX)
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD.log").write_text(NGINX)
    return folder


def test_a_folder_is_read_file_by_file_and_bad_files_lose_nothing_else(siem: Siem, settings: Settings,
                                                                        tmp_path: Path) -> None:
    folder = logs_folder(tmp_path)
    results = by_name(ingest(siem, folder, tmp_path / "missing.log"))
    siem.stop()

    assert set(results) == {"access.log", "auth.log.1.gz", "app.ndjson", "core.bin", "missing.log"}  # no hidden
    assert (results["access.log"].format, results["access.log"].records, results["access.log"].stored) == (
        "web_access", 3, 3)
    assert (results["auth.log.1.gz"].format, results["auth.log.1.gz"].stored) == ("linux_auth", 3)
    assert (results["app.ndjson"].records, results["app.ndjson"].stored, results["app.ndjson"].failures) == (3, 3, 1)
    assert results["core.bin"].skipped and "binary" in results["core.bin"].error
    assert results["missing.log"].error == "no such file or folder"

    events = stored(settings)
    assert len(events) == 9
    sources = {event.source for event in events}
    assert sources == {"file:access.log", "file:auth.log", "file:app.ndjson"}
    paths = {event.doc["log"]["file"]["path"] for event in events}
    assert paths == {str(folder / "nginx" / "access.log"), str(folder / "auth.log.1.gz"), str(folder / "app.ndjson")}
    assert len(stored(settings, 'source.ip:203.0.113.66 AND event.outcome:failure')) == 2
    failure = stored(settings, "event.kind:pipeline_error")
    assert [event.doc["event"]["original"] for event in failure] == ["this line is not JSON"]
    assert failure[0].source == "file:app.ndjson"


def test_a_cut_gzip_file_keeps_every_record_before_the_damage(siem: Siem, settings: Settings,
                                                             tmp_path: Path) -> None:
    lines = "".join(f"Nov 28 10:{n // 60:02d}:{n % 60:02d} web01 sshd[9]: Failed password for root from "
                    f"192.0.2.{n % 250 + 1} port {1024 + n} ssh2\n" for n in range(3000))
    whole = gzip.compress(lines.encode())
    cut = tmp_path / "auth.log.2.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    good = tmp_path / "after.log"
    good.write_text(AUTH)

    results = by_name(ingest(siem, cut, good))
    siem.stop()

    assert "cannot read past record" in results["auth.log.2.gz"].error
    assert 1000 < results["auth.log.2.gz"].records < 3000
    assert results["after.log"].ok and results["after.log"].stored == 3
    assert len(stored(settings)) == results["auth.log.2.gz"].stored + 3


def test_a_given_format_and_source_apply_to_every_text_file(siem: Siem, settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "access.log").write_text(NGINX)
    results = ingest(siem, tmp_path / "access.log", format="json", source="web-archive")
    siem.stop()
    assert (results[0].format, results[0].failures, results[0].source) == ("json", 3, "web-archive")
    events = stored(settings)
    assert {event.source for event in events} == {"web-archive"}
    assert all(event.doc["event"]["kind"] == "pipeline_error" for event in events)


def test_small_files_share_batches_and_each_event_names_its_own_file(settings: Settings, database: Database,
                                                                     tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    expected: dict[str, int] = {}
    for index in range(25):
        lines = [f'{{"message": "file {index} line {line}", "file_index": {index}}}' for line in range(index % 4 + 1)]
        if index % 5 == 0:
            lines.insert(1, f"broken line of file {index}")
        (folder / f"part-{index:02d}.ndjson").write_text("\n".join(lines) + "\n")
        expected[f"part-{index:02d}.ndjson"] = len(lines)
    siem = file_siem(settings, database)
    ingester = FileIngester(LocalSink(siem), source="parts", batch_records=7)
    try:
        open_siem_for_files(siem)
        results = by_name(list(ingester.ingest([folder])))
    finally:
        siem.stop()

    assert {name: result.stored for name, result in results.items()} == expected
    assert {name: result.failures for name, result in results.items()} == {
        name: 1 if int(name[5:7]) % 5 == 0 else 0 for name in expected}
    for event in stored(settings):
        path = Path(event.doc["log"]["file"]["path"])
        index = int(path.name[5:7])
        if event.doc["event"].get("kind") == "pipeline_error":
            assert event.doc["event"]["original"] == f"broken line of file {index}"
        else:
            assert event.doc["file_index"] == index


def test_lines_are_streamed_and_an_endless_line_is_cut() -> None:
    data = b"first\r\n\n" + b"x" * 5000 + b"\nlast"
    reader = LineReader(io.BytesIO(data), max_line=1000)
    lines = list(reader)
    assert lines == [b"first", b"x" * 1000, b"last"]
    assert reader.cut == 1


def test_default_source_names_a_log_and_its_rotations_alike() -> None:
    assert default_source(Path("/var/log/auth.log")) == "file:auth.log"
    assert default_source(Path("/var/log/auth.log.2.gz")) == "file:auth.log"
    assert default_source(Path("access.log-20261128.gz")) == "file:access.log"
    assert default_source(Path("Security.evtx")) == "file:Security.evtx"


@pytest.mark.skipif(not EVTX_SET.is_dir(), reason=NO_EVTX)
def test_evtx_files_plain_and_compressed_become_windows_events(siem: Siem, settings: Settings,
                                                               tmp_path: Path) -> None:
    sample = min(EVTX_SET.rglob("*.evtx"), key=lambda path: (path.stat().st_size, str(path)))
    packed = tmp_path / "Security.evtx.gz"
    packed.write_bytes(gzip.compress(sample.read_bytes()))

    results = ingest(siem, sample, packed)
    siem.stop()

    assert [result.format for result in results] == ["windows_json", "windows_json"]
    assert results[0].records == results[1].records > 0
    assert results[0].stored + results[1].stored == len(stored(settings))
    events = stored(settings, "EventID:*")
    assert len(events) == results[0].records * 2 - results[0].failures - results[1].failures
    assert {event.doc["log"]["file"]["path"] for event in events} == {str(sample), str(packed)}
    assert all("Channel" in event.doc for event in events)


@pytest.mark.skipif(not EVTX_SET.is_dir(), reason=NO_EVTX)
def test_a_damaged_evtx_file_is_reported_and_kept_as_failures(siem: Siem, settings: Settings,
                                                               tmp_path: Path) -> None:
    sample = max(EVTX_SET.rglob("*.evtx"), key=lambda path: (path.stat().st_size, str(path)))
    cut = tmp_path / "cut.evtx"
    cut.write_bytes(sample.read_bytes()[: 4096 + 65536 + 300])  # header, one chunk and a bit

    results = ingest(siem, cut)
    siem.stop()

    assert results[0].failures >= 1 and results[0].ok
    failures = stored(settings, "event.kind:pipeline_error")
    assert any("truncated" in event.doc["error"]["message"] for event in failures)
    assert all(event.doc["log"]["file"]["path"] == str(cut) for event in failures)
