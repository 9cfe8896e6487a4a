"""The demo day (``vigil.siem.demo``): the attack stories are in the store, searchable as an analyst would
look for them, every generated record parses, and a second load adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.siem import demo
from vigil.siem.search import compile_text
from vigil.siem.store.base import StoredEvent
from vigil.siem.store.duckdb import DuckDBEventStore

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
EVTX_SET = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "evtx"


class Events:
    def __init__(self, settings: Settings) -> None:
        self.store = DuckDBEventStore(settings.events_path)

    def count(self, query: str) -> int:
        compiled = compile_text(query)
        return self.store.count(compiled.sql, compiled.params)

    def find(self, query: str) -> list[StoredEvent]:
        compiled = compile_text(query)
        return self.store.search(compiled.sql, compiled.params, limit=10_000, order="asc")


@pytest.fixture
def loaded(settings: Settings, database: Database, tmp_path: Path) -> Iterator[tuple[dict[str, int], Events]]:
    added = demo.load(settings, database, evtx_dir=tmp_path / "no-evtx-here")
    events = Events(settings)
    yield added, events
    events.store.close()


def test_the_demo_day_tells_its_stories(loaded: tuple[dict[str, int], Events]) -> None:
    added, events = loaded
    assert added["sources"] == 5 and added["events"] > 10_000
    assert "EVTX records" not in added

    # 1. SSH brute force from one address, then a login as deploy, sudo and a new account.
    failures = events.find("source.ip:203.0.113.66 AND event.action:ssh_login AND event.outcome:failure")
    assert len(failures) >= 100
    assert failures[-1].ts - failures[0].ts < timedelta(minutes=30)
    success = events.find("source.ip:203.0.113.66 AND event.outcome:success AND user.name:deploy")
    assert len(success) == 1 and success[0].ts > failures[-1].ts
    assert events.count('user.name:deploy AND event.action:sudo_command AND process.command_line:"/bin/bash"') == 1
    assert events.count("event.action:user_created AND user.name:sysbackup") == 1

    # 2. Web scan: Nikto's 404 storm with the classic probes, then sqlmap.
    assert events.count("source.ip:198.51.100.23 AND user_agent.original:*Nikto* AND http.response.status_code:404") \
        >= 300
    for probe in ("/.env", "/wp-login.php", "/../../../../etc/passwd"):
        query = f'vigil.source:"file:nginx-access" AND source.ip:198.51.100.23 AND url.original:"{probe}"'
        assert events.count(query) == 1, probe
    assert events.count("user_agent.original:*sqlmap*") >= 50
    assert events.count("event.module:cef AND source.ip:198.51.100.23 AND event.action:deny") >= 10

    # 3. Windows: a burst of 4625, an RDP logon from the same address, then hands on keyboard.
    burst = events.find("EventID:4625 AND source.ip:198.51.100.77")
    assert len(burst) >= 50 and burst[-1].ts - burst[0].ts < timedelta(minutes=10)
    rdp = events.find("EventID:4624 AND LogonType:10 AND source.ip:198.51.100.77")
    assert len(rdp) == 1 and rdp[0].doc["TargetUserName"] == "administrator" and rdp[0].ts > burst[-1].ts
    assert events.count("CommandLine:*-enc* AND Computer:WS-FIN-07*") >= 1
    assert events.count('CommandLine:"whoami /all"') >= 1
    assert events.count("CommandLine:*svc-backup* AND CommandLine:*/add*") >= 2
    assert events.count("EventID:4688") > 100 and events.count("EventID:1") > 50  # normal work around it

    # Network sensors saw it too.
    assert events.count('event.kind:alert AND rule.name:"ET SCAN Potential SSH Scan" AND source.ip:203.0.113.66') >= 1
    assert events.count('event.kind:alert AND rule.name:"ET SCAN Nikto Web App Scan in Progress"') == 1
    assert events.count("event.module:zeek AND source.ip:198.51.100.77 AND destination.port:3389") >= 10


def test_every_generated_record_parses_into_its_source(loaded: tuple[dict[str, int], Events]) -> None:
    _, events = loaded
    # Only the deliberately broken records fail: three TLS probes on syslog, three cut-short Zeek lines.
    assert events.count("event.kind:pipeline_error AND vigil.source:syslog") == 3
    assert events.count('event.kind:pipeline_error AND vigil.source:"http:zeek"') == 3
    assert events.count("event.kind:pipeline_error") == 6
    assert {term.value for term in events.store.top_values("vigil.source")} == {
        "syslog", "file:nginx-access", "bulk:winlogbeat", "file:suricata-eve", "http:zeek"}
    assert events.count('log.file.path:"/var/log/nginx/access.log"') == events.count('vigil.source:"file:nginx-access"')


def test_a_second_load_adds_nothing(settings: Settings, database: Database,
                                    loaded: tuple[dict[str, int], Events], tmp_path: Path) -> None:
    _, events = loaded
    before = events.count("")
    events.store.close()
    assert demo.load(settings, database, evtx_dir=tmp_path / "no-evtx-here") == {}
    events.store = DuckDBEventStore(settings.events_path)
    assert events.count("") == before


@pytest.mark.skipif(not EVTX_SET.is_dir(), reason=f"the shared EVTX set is not at {EVTX_SET}")
def test_the_evtx_set_is_loaded_once_when_present(settings: Settings, database: Database,
                                                  loaded: tuple[dict[str, int], Events]) -> None:
    _, events = loaded
    events.store.close()
    added = demo.load(settings, database, evtx_dir=EVTX_SET)
    assert set(added) == {"EVTX records"} and added["EVTX records"] > 8000  # the day itself is not loaded again
    assert demo.load(settings, database, evtx_dir=EVTX_SET) == {}
    events.store = DuckDBEventStore(settings.events_path)
    assert events.count(f'vigil.source:"{demo.EVTX_SOURCE}" AND EventID:*') > 8000


def test_the_day_is_the_same_whenever_it_is_generated(settings: Settings) -> None:
    first, second = demo.generate(settings, NOW), demo.generate(settings, NOW)
    assert [stream.records for stream in first.streams] == [stream.records for stream in second.streams]
    later = demo.generate(settings, NOW + timedelta(days=3, hours=7))

    def attack(day: demo.Day) -> list[bytes]:
        """The brute force's lines without their time stamps (the first 20 bytes: PRI and stamp)."""
        syslog = next(stream for stream in day.streams if stream.source == "syslog")
        return [record[20:] for _, record in syslog.records if b"from 203.0.113.66" in record]

    assert len(attack(first)) >= 400
    assert attack(first) == attack(later)  # loaded on another day, at another hour: the same story
    assert first.start == NOW - timedelta(hours=24) and first.end == NOW
    assert all(first.start <= when <= first.end for stream in first.streams for when, _ in stream.records)
