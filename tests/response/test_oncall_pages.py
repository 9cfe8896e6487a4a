"""The on-call pages as a browser uses them: a schedule with two layers made and edited through its form, an
override, the calendar, a policy through its form, an escalation acknowledged with the button; a viewer sees
but cannot change; bad form input is shown back, nothing saved; the pages in Chinese."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import World
from tests.web.support import audit_actions, post_form, signed_in, text_of

from vigil.core.db import Scope
from vigil.response.oncall_models import EscalationPolicy, OncallSchedule

TODAY = datetime.now(UTC).date()


def schedule_form(**extra: str) -> dict[str, str]:
    return {"name": "Night desk", "time_zone": "Asia/Shanghai", "description": "", "layer_count": "2",
            "layer0_name": "base", "layer0_participants": "responder, analyst", "layer0_rotation": "weekly",
            "layer0_hours": "24", "layer0_handoff": "09:00", "layer0_start": (TODAY - timedelta(days=3)).isoformat(),
            "layer0_restrictions": "", "layer1_name": "", "layer1_participants": "", **extra}


def stored_schedules(world: World) -> list[OncallSchedule]:
    with world.database.transaction(Scope.system()) as session:
        return list(session.scalars(select(OncallSchedule)))


def test_schedule_form_calendar_and_override(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "responder")  # type: ignore[arg-type]
    answer = post_form(browser, "/oncall/schedules", schedule_form(), page="/oncall/schedules/new")
    assert answer.status_code == 303, text_of(answer)[:500]
    sid = stored_schedules(world)[0].id
    page = browser.get(answer.headers["location"])
    assert "The schedule is saved." in page.text
    # A second layer: the analyst on weekday office hours.
    answer = post_form(browser, f"/oncall/schedules/{sid}", schedule_form(
        layer1_name="office", layer1_participants="analyst", layer1_rotation="daily", layer1_hours="24",
        layer1_handoff="00:00", layer1_start=TODAY.isoformat(), layer1_restrictions="Mon-Fri 09:00-18:00"),
        page=f"/oncall/schedules/{sid}")
    assert answer.status_code == 303, text_of(answer)[:500]
    layers = stored_schedules(world)[0].layers
    assert [layer["name"] for layer in layers] == ["base", "office"]
    assert layers[1]["restrictions"] == [{"days": [0, 1, 2, 3, 4], "start": "09:00:00", "end": "18:00:00"}]
    page = browser.get(f"/oncall/schedules/{sid}")
    assert 'value="Mon-Fri 09:00-18:00"' in page.text

    # The form's times are the schedule's local times (Asia/Shanghai): from an hour ago to two hours ahead.
    local_now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    answer = post_form(browser, f"/oncall/schedules/{sid}/overrides", {
        "username": "viewer", "starts_at": (local_now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (local_now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "note": "covering"},
        page=f"/oncall/schedules/{sid}")
    assert answer.status_code == 303
    calendar = browser.get("/oncall")
    assert calendar.status_code == 200
    text = text_of(calendar)
    assert "Night desk" in text and "viewer" in text.split("On call now")[1]
    assert 'id="oncall-timeline-data"' in calendar.text and "/static/vendor/echarts.min.js" in calendar.text
    actions = [r.action for r in audit_actions(world.database) if r.action.startswith("oncall.")]
    assert actions == ["oncall.schedule.create", "oncall.schedule.update", "oncall.override.create"]


def test_bad_form_input_is_shown_back_and_nothing_saved(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "responder")  # type: ignore[arg-type]
    answer = post_form(browser, "/oncall/schedules", schedule_form(layer0_participants="responder, ghost"),
                       page="/oncall/schedules/new")
    assert answer.status_code == 422 and "ghost" in text_of(answer)
    answer = post_form(browser, "/oncall/schedules", schedule_form(layer0_restrictions="weekdays nine to five"),
                       page="/oncall/schedules/new")
    assert answer.status_code == 422 and "Mon-Fri 09:00-18:00" in text_of(answer)
    answer = post_form(browser, "/oncall/schedules", schedule_form(time_zone="Nowhere/City"),
                       page="/oncall/schedules/new")
    assert answer.status_code == 422
    assert 'value="Nowhere/City"' in answer.text  # the input is kept
    assert stored_schedules(world) == []


def test_policy_form_and_acknowledge_button(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "responder")  # type: ignore[arg-type]
    post_form(browser, "/oncall/schedules", schedule_form(), page="/oncall/schedules/new")
    answer = post_form(browser, "/oncall/policies", {
        "name": "Default", "description": "", "repeat": "2", "level_count": "2",
        "level0_targets": "schedule:Night desk", "level0_timeout": "10", "level1_targets": "viewer",
        "level1_timeout": "15"}, page="/oncall/policies")
    assert answer.status_code == 303, text_of(answer)[:500]
    with world.database.transaction(Scope.system()) as session:
        policy = session.scalars(select(EscalationPolicy)).one()
        assert policy.repeat == 2 and [lv["timeout_minutes"] for lv in policy.levels] == [10, 15]
        assert policy.levels[0]["targets"][0]["kind"] == "schedule"
    page = browser.get("/oncall/policies")
    assert "schedule:Night desk" in text_of(page)

    started = client.post("/api/v1/escalations", headers=world.headers("responder"),
                          json={"incident_id": 9, "title": "DDoS on api", "policy_id": policy.id}).json()
    listing = browser.get("/oncall/escalations?status=active")
    assert "DDoS on api" in listing.text and f'/oncall/escalations/{started["id"]}/acknowledge' in listing.text
    viewer = signed_in(client.app, "viewer")  # type: ignore[arg-type]
    seen = viewer.get("/oncall/escalations")
    assert "DDoS on api" in seen.text and "/acknowledge" not in seen.text
    assert viewer.get("/oncall/schedules/new").status_code == 403
    answer = post_form(browser, f"/oncall/escalations/{started['id']}/acknowledge", page="/oncall/escalations")
    assert answer.status_code == 303
    detail = browser.get(answer.headers["location"])
    assert "Acknowledged: the escalation stops here." in detail.text and "responder" in text_of(detail)


def test_pages_in_chinese(client: TestClient, world: World) -> None:
    browser = signed_in(client.app, "responder", **{"Accept-Language": "zh-CN"})  # type: ignore[arg-type]
    browser.post("/language", data={"language": "zh_CN", "next": "/oncall"})
    for path, words in [("/oncall", "值班日历"), ("/oncall/policies", "升级策略"), ("/oncall/escalations", "升级"),
                        ("/oncall/schedules/new", "新建排班")]:
        page = browser.get(path)
        assert page.status_code == 200 and words in page.text, path
