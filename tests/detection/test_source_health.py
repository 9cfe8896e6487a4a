"""A log source that goes silent past its expected interval raises one alert (origin ``health``), in its
source's unit; a source that speaks again and falls silent again raises a new one."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import cli_context
from tests.web.support import signed_in, text_of

from vigil.core.config import Settings
from vigil.core.db import Database, Scope
from vigil.detection.models import Alert
from vigil.detection.source_health import SILENT_RULE, SilentSourceWatch
from vigil.siem import sources
from vigil.siem.runtime import Siem
from vigil.siem.sources import SourceCreate

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def spoke(siem: Siem, source: str, unit_id: int, at: datetime) -> None:
    siem.store.append([{"@timestamp": at, "message": "hello", "host": {"name": "fw01"},
                        "event": {"ingested": at}}], unit_id=unit_id, source=source)


def alerts(database: Database) -> list[Alert]:
    with database.transaction(Scope.system()) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id)))


def test_silent_sources_raise_one_alert_each_until_they_speak_again(world: Any, settings: Settings,
                                                                   database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        for name, unit, minutes in (("syslog:fw01", world.branch_a, 10), ("http:quiet", world.hq, 60)):
            sources.create_source(cli_context(session), data=SourceCreate(
                name=name, unit_id=unit, expected_interval_minutes=minutes))
    siem = Siem(settings, database, consumers=[])
    watch = SilentSourceWatch(database, siem, settings)
    try:
        spoke(siem, "syslog:fw01", world.branch_a, NOW - timedelta(minutes=2))
        spoke(siem, "http:filebeat", world.hq, NOW - timedelta(days=2))  # no expected interval: never silent
        # The configured source that never sent anything is silent; the firewall spoke 2 minutes ago.
        assert watch.check(NOW).raised == 1
        (quiet,) = alerts(database)
        assert (quiet.origin, quiet.rule_uid, quiet.event_source, quiet.unit_id) == (
            "health", SILENT_RULE.id, "http:quiet", world.hq)
        assert quiet.title == "Log source went silent: http:quiet" and quiet.level == "medium"
        assert quiet.techniques == ["T1562.006"]
        assert "since never" in quiet.event["message"]
        # Still silent a minute later: nothing new, not even a count.
        assert watch.check(NOW + timedelta(minutes=1)).raised == 0
        # Eleven minutes on, the firewall is silent too: its own alert, in its branch.
        assert watch.check(NOW + timedelta(minutes=11)).raised == 1
        firewall = alerts(database)[-1]
        assert firewall.event_source == "syslog:fw01" and firewall.unit_id == world.branch_a
        assert firewall.event["vigil"]["expected_interval_minutes"] == 10
        # It speaks again, then falls silent again once the first alert was closed: a new alert.
        spoke(siem, "syslog:fw01", world.branch_a, NOW + timedelta(minutes=12))
        assert watch.check(NOW + timedelta(minutes=13)).raised == 0
        with database.transaction(Scope.system()) as session:
            session.get(Alert, firewall.id).status = "closed"  # type: ignore[union-attr]
        assert watch.check(NOW + timedelta(minutes=30)).raised == 1
        assert [a.event_source for a in alerts(database)] == ["http:quiet", "syslog:fw01", "syslog:fw01"]
    finally:
        siem.stop()


def test_the_alerts_page_says_where_a_health_alert_comes_from(client: TestClient, world: Any, settings: Settings,
                                                              database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        sources.create_source(cli_context(session), data=SourceCreate(name="http:quiet", expected_interval_minutes=5))
    siem = Siem(settings, database, consumers=[])
    try:
        SilentSourceWatch(database, siem, settings).check(NOW)
    finally:
        siem.stop()
    (alert,) = alerts(database)
    browser = signed_in(client.app, "analyst")  # type: ignore[arg-type]
    queue = text_of(browser.get("/detection/alerts?origin=health"))
    assert "Log source went silent: http:quiet" in queue and "Log source health" in queue
    page = browser.get(f"/detection/alerts/{alert.id}")
    assert page.status_code == 200
    assert "Raised by Vigil's log-source watch" in html.unescape(page.text) and "no longer imported" not in page.text
    assert "No event from log source http:quiet since never" in html.unescape(page.text)


def test_a_restart_finds_the_open_alert_instead_of_raising_another(world: Any, settings: Settings,
                                                                  database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        sources.create_source(cli_context(session), data=SourceCreate(name="http:quiet", expected_interval_minutes=5))
    siem = Siem(settings, database, consumers=[])
    try:
        assert SilentSourceWatch(database, siem, settings).check(NOW).raised == 1
        again = SilentSourceWatch(database, siem, settings).check(NOW + timedelta(minutes=5))
        assert (again.raised, again.deduplicated) == (0, 1)
        assert len(alerts(database)) == 1 and alerts(database)[0].count == 2
    finally:
        siem.stop()
