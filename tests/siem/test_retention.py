"""Retention on the real DuckDB store: per-source days and the default, what "met" and "due" say, the
audited ledger, and the daily job's thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import cli_context

from vigil.core.audit import AuditRecord
from vigil.core.config import Settings
from vigil.core.db import Scope
from vigil.siem import retention, sources
from vigil.siem.sources import SourceCreate, SourceUpdate
from vigil.siem.store.duckdb import DuckDBEventStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBEventStore]:
    opened = DuckDBEventStore(tmp_path / "events.duckdb")
    yield opened
    opened.close()


def days_ago(*ages: int) -> list[dict[str, Any]]:
    return [{"@timestamp": NOW - timedelta(days=age), "message": f"{age} days old"} for age in ages]


def configure(world: Any, **fields: Any) -> int:
    with world.database.transaction(Scope.system()) as session:
        return sources.create_source(cli_context(session), data=SourceCreate(**fields)).id


def run(world: Any, store: DuckDBEventStore, settings: Settings, now: datetime = NOW) -> retention.RunSummary:
    with world.database.transaction(Scope.system()) as session:
        pruned = retention.prune_expired(session, store, settings, now=now)
        return retention.record_run(cli_context(session), pruned)


def status(world: Any, store: DuckDBEventStore, settings: Settings, now: datetime = NOW,
           units: set[int] | None = None) -> dict[str, retention.PolicyStatus]:
    with world.database.transaction(Scope.system()) as session:
        found = retention.retention_status(session, store, settings, unit_ids=units, now=now)
    return {policy.source: policy for policy in found.policies}


def ages(store: DuckDBEventStore, source: str) -> list[int]:
    return sorted((NOW - e.ts).days for e in store.search("source = ?", [source], limit=1000))


def test_each_source_keeps_its_own_days_and_the_rest_the_default(world: Any, store: DuckDBEventStore,
                                                                 settings: Settings) -> None:
    assert settings.retention_days == 180
    configure(world, name="firewall", unit_id=world.hq, retention_days=400)
    configure(world, name="debug", unit_id=world.hq, retention_days=7)
    store.append(days_ago(1, 100, 200, 390, 500), unit_id=world.hq, source="firewall")
    store.append(days_ago(1, 6, 8, 30), unit_id=world.hq, source="debug")
    store.append(days_ago(1, 179, 181, 365), unit_id=world.branch_a, source="unconfigured")
    before = status(world, store, settings)
    assert before["firewall"].due and before["debug"].due and before["unconfigured"].due
    assert before["unconfigured"].default and before["unconfigured"].days == 180
    assert before["debug"].below_legal_minimum and not before["firewall"].below_legal_minimum
    assert before["firewall"].held_days == 500

    summary = run(world, store, settings)
    assert ages(store, "firewall") == [1, 100, 200, 390]
    assert ages(store, "debug") == [1, 6]
    assert ages(store, "unconfigured") == [1, 179]
    assert summary.deleted == 5
    assert {name: entry["deleted"] for name, entry in summary.sources.items()} == {
        "firewall": 1, "debug": 2, "unconfigured": 2}
    after = status(world, store, settings)
    assert all(policy.met and not policy.due for policy in after.values())
    assert after["firewall"].oldest == NOW - timedelta(days=390)
    assert after["firewall"].pruned_before == NOW - timedelta(days=400)
    # The run is on the audit trail, with each source's cut-off: the ledger that "met" is judged by.
    with world.database.transaction(Scope.system()) as session:
        record = session.scalars(select(AuditRecord).where(AuditRecord.action == "siem.retention.run")).one()
        assert record.details["deleted"] == 5
        assert record.details["sources"]["debug"] == {
            "days": 7, "cutoff": (NOW - timedelta(days=7)).isoformat(), "deleted": 2}
    # A second run finds nothing more to delete.
    assert run(world, store, settings).deleted == 0


def test_a_policy_raised_after_a_shorter_one_pruned_is_not_met(world: Any, store: DuckDBEventStore,
                                                               settings: Settings) -> None:
    """Events younger than the new policy were deleted: the store no longer holds what the policy asks."""
    source_id = configure(world, name="proxy", unit_id=world.hq, retention_days=30)
    store.append(days_ago(1, 20, 60, 120), unit_id=world.hq, source="proxy")
    run(world, store, settings)
    assert status(world, store, settings)["proxy"].met
    with world.database.transaction(Scope.system()) as session:
        sources.update_source(cli_context(session), source_id=source_id, data=SourceUpdate(retention_days=180))
    raised = status(world, store, settings)["proxy"]
    assert not raised.met and raised.pruned_before == NOW - timedelta(days=30)
    # Once the deleted span has aged past the policy, it is met again.
    assert status(world, store, settings, now=NOW + timedelta(days=151))["proxy"].met


def test_a_young_source_meets_its_policy_and_an_idle_one_is_listed(world: Any, store: DuckDBEventStore,
                                                                   settings: Settings) -> None:
    configure(world, name="new-app", unit_id=world.hq)
    configure(world, name="never-sent", unit_id=world.hq)
    store.append(days_ago(3), unit_id=world.hq, source="new-app")
    found = status(world, store, settings)
    assert found["new-app"].met and not found["new-app"].due and found["new-app"].held_days == 3
    assert found["never-sent"].oldest is None and found["never-sent"].met


def test_status_covers_only_the_units_asked_for(world: Any, store: DuckDBEventStore, settings: Settings) -> None:
    store.append(days_ago(1), unit_id=world.branch_a, source="a")
    store.append(days_ago(1), unit_id=world.branch_b, source="b")
    assert set(status(world, store, settings, units={world.branch_a, world.line_a})) == {"a"}


def test_the_scheduled_run_deletes_and_records_only_when_something_went(world: Any, store: DuckDBEventStore,
                                                                        settings: Settings) -> None:
    store.append(days_ago(1), unit_id=world.hq, source="fresh")
    nothing = retention.run_retention(world.database, store, settings)
    assert nothing.deleted == 0
    store.append([{"@timestamp": datetime.now(UTC) - timedelta(days=365)}], unit_id=world.hq, source="old")
    done = retention.run_retention(world.database, store, settings)
    assert done.deleted == 1 and done.actor == "system:retention"
    with world.database.transaction(Scope.system()) as session:
        records = session.scalars(select(AuditRecord).where(AuditRecord.action == "siem.retention.run")).all()
        assert [(r.actor, r.details["deleted"]) for r in records] == [("system:retention", 1)]
        assert records[0].unit_id == world.hq


def test_the_job_runs_shortly_after_start_and_then_on_its_interval(world: Any, store: DuckDBEventStore,
                                                                   settings: Settings) -> None:
    store.append([{"@timestamp": datetime.now(UTC) - timedelta(days=200)}], unit_id=world.hq, source="old")
    ran = threading.Event()
    calls: list[int] = []

    def store_once() -> DuckDBEventStore | None:
        calls.append(1)
        if len(calls) >= 2:
            ran.set()
        return store

    job = retention.RetentionJob(world.database, settings, store=store_once, first_delay=0.01, interval=0.05)
    job.start()
    try:
        assert ran.wait(30), "the job did not run twice"
    finally:
        job.stop()
    assert job.last_run is not None and job.last_error == ""
    assert store.count() == 0
    assert job.next_run_at is not None


def test_a_failing_run_is_reported_and_the_job_keeps_going(world: Any, settings: Settings, tmp_path: Path) -> None:
    closed = DuckDBEventStore(tmp_path / "closed.duckdb")
    closed.close()
    job = retention.RetentionJob(world.database, settings, store=lambda: closed, first_delay=3600)
    assert job.run_now() is None
    assert "closed" in job.last_error
    empty = retention.RetentionJob(world.database, settings, store=lambda: None)
    assert empty.run_now() is None and empty.last_error == ""


def test_a_branch_sees_only_what_a_run_did_to_its_own_sources(world: Any, store: DuckDBEventStore,
                                                              settings: Settings) -> None:
    store.append(days_ago(1, 200), unit_id=world.branch_a, source="shanghai")
    store.append(days_ago(1, 200, 300), unit_id=world.branch_b, source="beijing")
    assert run(world, store, settings).deleted == 3
    with world.database.transaction(Scope.system()) as session:
        branch = retention.retention_status(session, store, settings, unit_ids={world.branch_a, world.line_a}, now=NOW)
        everything = retention.retention_status(session, store, settings, now=NOW)
    assert branch.last_run is not None and everything.last_run is not None
    assert set(branch.last_run.sources) == {"shanghai"} and branch.last_run.deleted == 1
    assert set(everything.last_run.sources) == {"shanghai", "beijing"} and everything.last_run.deleted == 3
