"""Log sources: settings with validation and audit, figures from the real DuckDB store, silence, and the
providers the pipeline reads (per-source time zone for year-less syslog stamps, event.original)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from tests.conftest import cli_context

from vigil.core.audit import AuditRecord
from vigil.core.config import Settings
from vigil.core.db import Scope
from vigil.core.errors import Conflict, NotFound
from vigil.siem import sources
from vigil.siem.runtime import Siem
from vigil.siem.source_stats import SourceStats
from vigil.siem.sources import SourceCreate, SourceDirectory, SourceUpdate
from vigil.siem.spool import BatchMeta
from vigil.siem.store.duckdb import DuckDBEventStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    yield opened
    opened.close()


def event(host: str | None, *, ingested: datetime, failure: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {"@timestamp": ingested - timedelta(seconds=1), "message": "hello",
                           "event": {"ingested": ingested}}
    if host is not None:
        doc["host"] = {"name": host}
    if failure:
        doc["event"]["kind"] = "pipeline_error"
        doc["error"] = {"message": "no parser recognises this record's format"}
    return doc


def configure(world: Any, **fields: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return sources.create_source(cli_context(session), data=SourceCreate(**fields)).id


def test_sources_merge_configured_and_observed_with_rates_failures_and_silence(
        world: Any, store: DuckDBEventStore, settings: Settings) -> None:
    configure(world, name="syslog", unit_id=world.hq, format="syslog", timezone="UTC", retention_days=365,
              expected_interval_minutes=10)
    configure(world, name="http:quiet", unit_id=world.hq, expected_interval_minutes=60)
    recent = NOW - timedelta(minutes=2)
    store.append([event("fw01", ingested=recent) for _ in range(60)]
                 + [event("fw01", ingested=recent, failure=True) for _ in range(15)]
                 + [event("sw02", ingested=NOW - timedelta(hours=3))]
                 + [event("retired", ingested=NOW - timedelta(days=3), failure=True)],
                 unit_id=world.hq, source="syslog")
    store.append([event(None, ingested=NOW - timedelta(hours=2))], unit_id=world.hq, source="http:filebeat")
    with world.database.transaction(Scope.system()) as session:
        listing = sources.source_statuses(session, store, settings, unit_ids=None, now=NOW)
    by_name = {item.name: item for item in listing.items}
    assert list(by_name) == ["http:filebeat", "http:quiet", "syslog"]
    syslog = by_name["syslog"]
    # Held: everything; hosts and parse errors: the last 24 hours (the retired host's failure is older).
    assert syslog.configured and syslog.events == 77 and syslog.events_24h == 76 and syslog.failures_24h == 15
    assert syslog.failure_rate_24h == pytest.approx(15 / 76, abs=1e-4)
    assert syslog.events_per_second == pytest.approx(75 / 300, abs=1e-3)  # 75 events in the last 5 minutes
    assert syslog.last_seen == recent and not syslog.silent
    assert syslog.retention_days == 365 and syslog.timezone == "UTC" and syslog.format == "syslog"
    assert [(h.host, h.events_24h, h.failures_24h) for h in syslog.hosts] == [("fw01", 75, 15), ("sw02", 1, 0)]
    assert syslog.hosts[0].failure_rate_24h == 0.2 and syslog.hosts[1].events_per_second == 0.0
    # Configured, expected every hour, never sent: silent. Observed without settings: defaults, never silent.
    quiet = by_name["http:quiet"]
    assert quiet.silent and quiet.last_seen is None and quiet.events == 0 and quiet.hosts == []
    filebeat = by_name["http:filebeat"]
    assert not filebeat.configured and not filebeat.silent and filebeat.unit_id == world.hq
    assert filebeat.retention_days == settings.retention_days and filebeat.timezone == settings.log_timezone
    assert filebeat.hosts[0].host == ""
    assert listing.silent == 1
    # Ten minutes pass: syslog's interval is exceeded too.
    with world.database.transaction(Scope.system()) as session:
        later = sources.source_statuses(session, store, settings, unit_ids=None, now=NOW + timedelta(minutes=11))
    assert {item.name for item in later.items if item.silent} == {"http:quiet", "syslog"}


def test_figures_cover_only_the_units_asked_for(world: Any, store: DuckDBEventStore, settings: Settings) -> None:
    store.append([event("a1", ingested=NOW)], unit_id=world.branch_a, source="branch-a")
    store.append([event("b1", ingested=NOW)], unit_id=world.branch_b, source="branch-b")
    with world.database.transaction(Scope.system()) as session:
        listing = sources.source_statuses(session, store, settings, unit_ids={world.branch_a, world.line_a}, now=NOW)
        assert [item.name for item in listing.items] == ["branch-a"]
        assert sources.source_statuses(session, store, settings, unit_ids=set(), now=NOW).items == []


def test_settings_are_validated(world: Any) -> None:
    with pytest.raises(ValidationError, match="unknown log format 'nope'"):
        SourceCreate(name="x", format="nope")
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        SourceCreate(name="x", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        SourceCreate(name="x", retention_days=0)
    with pytest.raises(ValidationError, match="name"):
        SourceCreate(name="has space")
    with pytest.raises(ValidationError, match="extra"):
        SourceUpdate.model_validate({"retention": 5})
    assert sources.retention_warnings(90) == [
        "retention of 90 days is below the 180 days the Cybersecurity Law (Art. 21) requires for network logs"]
    assert sources.retention_warnings(180) == [] and sources.retention_warnings(None) == []


def test_changes_are_audited_and_names_are_unique_across_units(world: Any) -> None:
    source_id = configure(world, name="syslog", unit_id=world.branch_b, retention_days=200)
    with pytest.raises(Conflict):
        configure(world, name="syslog", unit_id=world.branch_a)
    with world.database.transaction(Scope.system()) as session:
        ctx = cli_context(session)
        row = sources.update_source(ctx, source_id=source_id, data=SourceUpdate(timezone="Asia/Tokyo",
                                                                                 retention_days=None))
        assert row.timezone == "Asia/Tokyo" and row.retention_days is None  # null: back to the default
        sources.update_source(ctx, source_id=source_id, data=SourceUpdate(timezone="Asia/Tokyo"))  # no change
        sources.delete_source(ctx, source_id=source_id)
    with world.database.transaction(Scope.system()) as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.action.like("siem.source.%"))
                                  .order_by(AuditRecord.seq)).all()
        assert [r.action for r in records] == ["siem.source.create", "siem.source.update", "siem.source.delete"]
        assert records[1].details == {"name": "syslog", "timezone": [None, "Asia/Tokyo"], "retention_days": [200, None]}
        assert all(r.unit_id == world.branch_b for r in records)
        with pytest.raises(NotFound):
            sources.get_source(session, source_id)


def test_a_unit_outside_the_scope_is_refused_as_not_found(world: Any) -> None:
    with world.database.transaction(Scope(frozenset({world.branch_a, world.line_a}))) as session:
        ctx = cli_context(session)
        with pytest.raises(NotFound, match="outside your scope"):
            sources.create_source(ctx, data=SourceCreate(name="planted", unit_id=world.branch_b))
        created = sources.create_source(ctx, data=SourceCreate(name="mine", unit_id=world.line_a))
        with pytest.raises(NotFound):
            sources.update_source(ctx, source_id=created.id, data=SourceUpdate(unit_id=world.branch_b))


def test_the_directory_serves_settings_with_defaults_and_reloads_after_a_commit(world: Any, settings: Settings) -> None:
    directory = SourceDirectory(world.database, settings, default_unit=lambda name: world.hq, refresh_seconds=3600)
    assert directory.config("syslog").timezone.key == settings.log_timezone
    assert directory.unit("syslog") == world.hq
    with world.database.transaction(Scope.system()) as session:
        sources.create_source(cli_context(session), data=SourceCreate(
            name="syslog", unit_id=world.branch_a, timezone="America/New_York", keep_original=False, format="syslog"))
        sources.after_commit(session, directory.invalidate)
        assert directory.unit("syslog") == world.hq  # not committed yet: still the old answer
    config = directory.config("syslog")
    assert (config.timezone.key, config.keep_original, config.format) == ("America/New_York", False, "syslog")
    assert directory.unit("syslog") == world.branch_a
    assert directory.unit("other") == world.hq


def test_the_pipeline_reads_a_source_with_its_own_time_zone_and_original_setting(world: Any,
                                                                                 settings: Settings) -> None:
    """A year-less, zone-less syslog stamp is read in the source's zone; event.original as configured."""
    configure(world, name="tokyo", unit_id=world.branch_a, format="syslog", timezone="Asia/Tokyo",
              keep_original=False)
    configure(world, name="utc", unit_id=world.hq, format="syslog", timezone="UTC")
    siem = Siem(settings, world.database)
    try:
        record = b"<34>Nov 27 09:15:00 fw01 sshd[42]: Failed password for root from 203.0.113.9 port 2222 ssh2"
        received = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
        for name in ("tokyo", "utc"):
            siem.submit([record], BatchMeta(source=name, unit_id=siem.unit_for(name), received_at=received))
        assert siem.drain()
        stored = {e.source: e for e in siem.store.search(limit=10)}
    finally:
        siem.stop()
    assert stored["tokyo"].ts == datetime(2026, 11, 27, 0, 15, tzinfo=UTC)  # 09:15 in Tokyo
    assert stored["utc"].ts == datetime(2026, 11, 27, 9, 15, tzinfo=UTC)
    assert stored["tokyo"].unit_id == world.branch_a and stored["utc"].unit_id == world.hq
    assert "original" not in stored["tokyo"].doc.get("event", {})
    assert stored["utc"].doc["event"]["original"] == record.decode()


def test_host_figures_are_kept_up_to_date_incrementally(world: Any, store: DuckDBEventStore) -> None:
    """Each refresh reads only the rows stored since the last; a day later the host drops out."""
    clock = {"now": NOW}
    stats = SourceStats(max_age=0, clock=lambda: clock["now"])
    store.append([event("fw01", ingested=NOW - timedelta(hours=5), failure=True)], unit_id=world.hq, source="fw")
    store.append([event("fw01", ingested=NOW - timedelta(seconds=30)) for _ in range(30)], unit_id=world.hq,
                 source="fw")
    first = stats.window(store, unit_ids=None)
    assert [(w.host, w.events, w.recent, w.failures) for w in first] == [("fw01", 31, 30, 1)]
    assert first[0].rate_seconds == 300  # NOW is on the minute: the last five whole minutes
    # New rows are added to what was counted, never counted twice.
    store.append([event("fw01", ingested=NOW - timedelta(seconds=10)) for _ in range(5)]
                 + [event("ap07", ingested=NOW - timedelta(seconds=5))], unit_id=world.branch_a, source="fw")
    second = {(w.host, w.unit_id): w for w in stats.window(store, unit_ids=None)}
    assert second[("fw01", world.hq)].events == 31 and second[("fw01", world.branch_a)].events == 5
    assert sorted(w.host for w in stats.window(store, unit_ids={world.branch_a})) == ["ap07", "fw01"]
    # Ten minutes later nothing is recent; a day later nothing is left of these hosts.
    clock["now"] = NOW + timedelta(minutes=10)
    assert all(w.recent == 0 for w in stats.window(store, unit_ids=None))
    clock["now"] = NOW + timedelta(hours=26)
    assert stats.window(store, unit_ids=None) == []
    listing_hosts = {w.host for w in SourceStats(clock=lambda: NOW).window(store, unit_ids=None)}
    assert listing_hosts == {"fw01", "ap07"}  # a fresh reader counts the same day from scratch
