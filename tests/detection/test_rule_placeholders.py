"""Sigma placeholders as the SOC manages them, against a real records store: the platform-wide table,
audited changes, rules refused at import until their placeholder has values (then loaded by importing the
pack again), live detection's rules recompiled when a value changes, hunts over stored events and rule
tests using the values; /api/v1/rule-placeholders, `vigil rules placeholders` and the packs page."""

from __future__ import annotations

import html
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.api.support import assert_problem, audit_records
from tests.detection.test_rules_service import actor_of, rows, write
from tests.web.support import csrf_of, signed_in
from tests.web.support import text_of as raw_text_of
from typer.testing import CliRunner, Result

from vigil.accounts import service as accounts
from vigil.cli.main import app as cli_app
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.detection import hunts_service, placeholders_service, rule_tests, rules_service
from vigil.detection.live import LiveDetection
from vigil.detection.models import RulePlaceholder
from vigil.detection.rules_import import import_pack
from vigil.detection.schemas_placeholders import PlaceholderSet
from vigil.detection.schemas_rules import RuleTestTry
from vigil.detection.sigma import Engine

SECURITY = {"Channel": "Security", "EventID": 4886}
CHASE_UID = "7b1f2a52-0c55-4f1e-9d7e-2b1d7b0c9a10"


def chase_rule(uid: str = CHASE_UID, title: str = "CDC Chase To Unknown Host") -> str:
    return (f"title: {title}\nid: {uid}\nstatus: test\nauthor: Test Author\nlogsource:\n"
            "    product: windows\n    service: security\ndetection:\n    selection:\n        EventID: 4886\n"
            "        Attributes|contains: 'cdc:'\n    filter_main_known_cdc:\n"
            "        Attributes|contains|expand: '%known_cdcs%'\n    condition: selection and not 1 of filter_main_*\n"
            "level: high\n")


def plain_rule() -> str:
    return ("title: Plain Rule\nid: 7b1f2a52-0c55-4f1e-9d7e-2b1d7b0c9a11\nstatus: test\nlogsource:\n"
            "    product: windows\n    service: security\ndetection:\n    selection:\n        EventID: 4794\n"
            "    condition: selection\nlevel: high\n")


def ctx_of(session: Any, database: Database) -> Context:
    return Context(session=session, actor=actor_of(database))


def set_values(database: Database, name: str, values: list[str], description: str = "") -> None:
    with database.transaction(Scope.system()) as session:
        placeholders_service.set_placeholder(ctx_of(session, database), name=name,
                                             data=PlaceholderSet(values=values, description=description))


def remove(database: Database, name: str) -> None:
    with database.transaction(Scope.system()) as session:
        placeholders_service.remove_placeholder(ctx_of(session, database), name=name)


def matrix_placeholder(database: Database) -> str:
    """A fresh placeholder, for the role matrix to read, change or remove."""
    name = f"matrix_{uuid.uuid4().hex[:12]}"
    with database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=audit.Actor(None, "test-setup", accounts.root_unit_id(session)))
        placeholders_service.set_placeholder(ctx, name=name, data=PlaceholderSet(values=["dc01"]))
    return name


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    folder = tmp_path / "adcs"
    write(folder, "chase.yml", chase_rule())
    write(folder, "plain.yml", plain_rule())
    return folder


def rogue(host: str = "10.6.6.6") -> dict[str, Any]:
    return {**SECURITY, "Attributes": f"cdc:{host}\nrmd:dc09.corp.local"}


# --- service: storage, audit, import, live detection ---------------------------------------------------


def test_set_and_remove_are_audited_with_old_and_new_values(database: Database) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"], "domain controllers")
    set_values(database, "known_cdcs", ["dc01.corp.local", "10.0.0.1"], "domain controllers")
    set_values(database, "known_cdcs", ["dc01.corp.local", "10.0.0.1"], "domain controllers")  # no change
    with database.transaction(Scope.system()) as session:
        row = session.scalar(select(RulePlaceholder).where(RulePlaceholder.name == "known_cdcs"))
        assert row is not None and row.values == ["dc01.corp.local", "10.0.0.1"] and row.updated_by == "tests"
    remove(database, "known_cdcs")
    records = [r for r in audit_records(database) if r.action.startswith("detection.rule_placeholder.")]
    assert [r.action for r in records] == ["detection.rule_placeholder.create", "detection.rule_placeholder.update",
                                           "detection.rule_placeholder.delete"]
    assert records[1].details["changes"]["values"] == [["dc01.corp.local"], ["dc01.corp.local", "10.0.0.1"]]
    assert records[2].details["values"] == ["dc01.corp.local", "10.0.0.1"]
    assert placeholders_service.current_values(database) == {}


def test_bad_names_and_values_are_refused(database: Database) -> None:
    with database.transaction(Scope.system()) as session, pytest.raises(Exception, match="not allowed"):
        placeholders_service.set_placeholder(ctx_of(session, database), name="bad name",
                                             data=PlaceholderSet(values=["x"]))
    for values in ([], [""], ["x" * 1025], [str(n) for n in range(1001)]):
        with pytest.raises(ValueError):
            PlaceholderSet(values=values)


def test_a_rule_refused_at_import_loads_once_the_value_is_set_and_the_pack_imported_again(
        database: Database, pack: Path) -> None:
    first = import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    assert [c.title for c in first.added] == ["Plain Rule"]
    assert any("%known_cdcs% has no values" in error and "vigil rules placeholders set known_cdcs" in error
               for error in first.errors)
    with database.transaction(Scope.system()) as session:
        assert [(use.name, use.refused) for use in placeholders_service.missing(session)] == [("known_cdcs", ["adcs"])]
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    with database.transaction(Scope.system()) as session:
        read = placeholders_service.read(session, placeholders_service.get_placeholder(session, "known_cdcs"))
        assert read.refused == ["adcs"] and read.rules == 0  # its rule is not stored yet: import again
    again = import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    assert [c.title for c in again.added] == ["CDC Chase To Unknown Host"] and not again.errors
    with database.transaction(Scope.system()) as session:
        read = placeholders_service.read(session, placeholders_service.get_placeholder(session, "known_cdcs"))
        assert read.refused == [] and read.rules == 1
        assert placeholders_service.missing(session) == []
    _, rules = rules_service.enabled_rules(database)
    engine = Engine([rule for rule in rules if rule.id == CHASE_UID])
    assert engine.match(rogue()) and not engine.match(rogue("dc01.corp.local"))


def test_changing_a_value_recompiles_the_rules_using_it_at_the_next_refresh(database: Database, pack: Path) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    version, rules = rules_service.enabled_rules(database)
    chase = next(rule for rule in rules if rule.id == CHASE_UID)
    assert Engine([chase]).match(rogue("10.6.6.6"))

    set_values(database, "unrelated", ["x"])  # no rule uses it: the version stays
    assert rules_service.enabled_rules(database)[0] == version

    set_values(database, "known_cdcs", ["dc01.corp.local", "10.6.6.6"])
    changed, rules = rules_service.enabled_rules(database)
    assert changed != version  # live detection rebuilds its engine when the version changes
    chase = next(rule for rule in rules if rule.id == CHASE_UID)
    assert not Engine([chase]).match(rogue("10.6.6.6")) and Engine([chase]).match(rogue("10.7.7.7"))

    rules_service._compiled.clear()  # a new process compiles from the stored YAML with the table's values
    assert rules_service.enabled_rules(database)[0] == changed

    remove(database, "known_cdcs")  # the rule no longer compiles: dropped, the others run
    gone, rules = rules_service.enabled_rules(database)
    assert gone != changed and [rule.title for rule in rules] == ["Plain Rule"]


def test_live_detection_picks_up_a_changed_value_at_its_next_rules_check(database: Database, pack: Path) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    live = LiveDetection(database, lambda: rules_service.enabled_rules(database), refresh_seconds=0)
    engine = live.engine()
    assert engine is not None and [rule.id for rule in engine.match(rogue("10.6.6.6"))] == [CHASE_UID]
    before = live.status.version
    set_values(database, "known_cdcs", ["dc01.corp.local", "10.6.6.6"])
    engine = live.engine()
    assert live.status.version != before
    assert engine is not None and not engine.match(rogue("10.6.6.6")) and engine.match(rogue("10.7.7.7"))


def test_hunts_over_stored_events_and_rule_tests_use_the_values(database: Database, pack: Path) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    with database.transaction(Scope.system()) as session:  # a disabled rule named in a hunt compiles here
        chase = hunts_service.select_rules(session, [], [CHASE_UID])[0]
        assert Engine([chase]).match(rogue()) and not Engine([chase]).match(rogue("dc01.corp.local"))
    set_values(database, "known_cdcs", ["10.6.6.6"])
    row = rows(database, "adcs")[CHASE_UID]
    with database.transaction(Scope.system()) as session:
        chase = hunts_service.select_rules(session, [], [CHASE_UID])[0]
        assert not Engine([chase]).match(rogue()) and Engine([chase]).match(rogue("dc01.corp.local"))
        report = rule_tests.try_events(session, rule_id=row.id, events=[
            RuleTestTry(record=orjson.dumps(rogue("dc01.corp.local")).decode())])
        assert report.results[0].got == "match", report


# --- API -------------------------------------------------------------------------------------------------


def test_api_set_read_list_remove(client: TestClient, world: Any, database: Database, pack: Path) -> None:
    import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    h = world.headers("secadmin")
    listed = client.get("/api/v1/rule-placeholders", headers=world.headers("analyst")).json()
    assert listed == {"items": [], "total": 0, "limit": 50, "offset": 0}
    missing = client.get("/api/v1/rule-placeholders-missing", headers=world.headers("analyst")).json()
    assert missing["items"] == [{"name": "known_cdcs", "refused": ["adcs"]}] and missing["total"] == 1
    put = client.put("/api/v1/rule-placeholders/known_cdcs", headers=h,
                     json={"values": ["dc01.corp.local", "10.0.0.1"], "description": "DCs"})
    assert put.status_code == 200, put.text
    assert put.json()["values"] == ["dc01.corp.local", "10.0.0.1"] and put.json()["refused"] == ["adcs"]
    read = client.get("/api/v1/rule-placeholders/known_cdcs", headers=world.headers("analyst"))
    assert read.status_code == 200 and read.json()["description"] == "DCs"
    assert audit_records(database, action="detection.rule_placeholder.create")[-1].actor == "secadmin"
    assert_problem(client.put("/api/v1/rule-placeholders/known_cdcs", headers=h, json={"values": []}), 422)
    assert_problem(client.put("/api/v1/rule-placeholders/known_cdcs", headers=h,
                              json={"values": ["x" * 1025]}), 422)
    assert_problem(client.put("/api/v1/rule-placeholders/bad%20name", headers=h, json={"values": ["x"]}), 422)
    assert client.delete("/api/v1/rule-placeholders/known_cdcs", headers=h).status_code == 204
    assert_problem(client.get("/api/v1/rule-placeholders/known_cdcs", headers=h), 404, "not-found")
    assert_problem(client.delete("/api/v1/rule-placeholders/known_cdcs", headers=h), 404, "not-found")


def test_api_changes_need_rules_write_at_headquarters(client: TestClient, world: Any, database: Database) -> None:
    name = matrix_placeholder(database)
    for user in ("analyst", "secadmin_a"):  # analysts read rules; a branch's security admin is not at hq
        assert_problem(client.put(f"/api/v1/rule-placeholders/{name}", headers=world.headers(user),
                                  json={"values": ["evil"]}), 403)
        assert_problem(client.delete(f"/api/v1/rule-placeholders/{name}", headers=world.headers(user)), 403)
    assert placeholders_service.current_values(database)[name] == ["dc01"]


# --- CLI --------------------------------------------------------------------------------------------------


class Vigil:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli_app, list(args), env=self.env)


@pytest.fixture
def vigil(world: Any, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Vigil:
    monkeypatch.chdir(tmp_path)
    return Vigil({"VIGIL_DATABASE_URL": database_url, "VIGIL_DATA_DIR": str(tmp_path / "var")})


def test_cli_list_set_remove(vigil: Vigil, world: Any, database: Database, pack: Path) -> None:
    imported = vigil("rules", "import", str(pack), "--pack", "adcs")
    assert imported.exit_code == 0 and "%known_cdcs% has no values" in imported.stderr
    listed = vigil("rules", "placeholders", "list")
    assert listed.exit_code == 0 and "%known_cdcs% has no values: rules of adcs were refused" in listed.stderr
    saved = vigil("rules", "placeholders", "set", "known_cdcs", "dc01.corp.local", "10.0.0.1",
                  "--description", "DCs")
    assert saved.exit_code == 0, saved.output
    assert "placeholder %known_cdcs% saved: 2 values" in saved.stdout and "import that pack again" in saved.stderr
    assert vigil("rules", "import", str(pack), "--pack", "adcs").exit_code == 0
    listed = orjson.loads(vigil("rules", "placeholders", "list", "--json").stdout)
    assert [(i["name"], i["values"], i["rules"], i["description"]) for i in listed["items"]] == [
        ("known_cdcs", ["dc01.corp.local", "10.0.0.1"], 1, "DCs")]
    assert listed["missing"] == []
    assert audit_records(database, action="detection.rule_placeholder.create")[-1].actor.startswith("cli:")
    bad = vigil("rules", "placeholders", "set", "bad name", "x")
    assert bad.exit_code != 0 and "not allowed" in bad.output
    assert vigil("rules", "placeholders", "remove", "known_cdcs").exit_code == 0
    assert vigil("rules", "placeholders", "remove", "known_cdcs").exit_code != 0
    assert placeholders_service.current_values(database) == {}


# --- page ---------------------------------------------------------------------------------------------------


def text_of(page: Any) -> str:
    return html.unescape(raw_text_of(page))


def test_the_packs_page_lists_sets_and_removes_placeholders(app: FastAPI, world: Any, database: Database,
                                                             pack: Path) -> None:
    import_pack(database, path=pack, name="adcs", actor=actor_of(database))
    secadmin = signed_in(app, "secadmin")
    page = secadmin.get("/detection/rules/packs")
    assert page.status_code == 200
    assert "%known_cdcs% has no values: rules of adcs were refused at import." in text_of(page)
    token = csrf_of(page)
    refused = secadmin.post("/detection/rules/packs/placeholders",
                            data={"name": "known_cdcs", "values": "dc01.corp.local\n10.0.0.1", "description": ""})
    assert refused.status_code == 403  # no CSRF token
    saved = secadmin.post("/detection/rules/packs/placeholders", data={
        "csrf_token": token, "name": "known_cdcs", "values": "dc01.corp.local\r\n10.0.0.1\n\n", "description": "DCs"})
    assert saved.status_code == 200
    assert "Placeholder %known_cdcs% saved with 2 values." in text_of(saved)
    assert "Import these packs again to load the rules refused for lacking it: adcs." in text_of(saved)
    assert placeholders_service.current_values(database) == {"known_cdcs": ["dc01.corp.local", "10.0.0.1"]}
    empty = secadmin.post("/detection/rules/packs/placeholders",
                          data={"csrf_token": token, "name": "known_cdcs", "values": " \n", "description": ""})
    assert empty.status_code == 422 and "Check the marked fields." in text_of(empty)
    badly_named = secadmin.post("/detection/rules/packs/placeholders",
                                data={"csrf_token": token, "name": "bad name", "values": "x", "description": ""})
    assert badly_named.status_code == 422 and "not allowed" in text_of(badly_named)
    removed = secadmin.post("/detection/rules/packs/placeholders/known_cdcs/delete", data={"csrf_token": token})
    assert removed.status_code == 200 and "Placeholder %known_cdcs% removed" in text_of(removed)
    assert placeholders_service.current_values(database) == {}


def test_analysts_see_placeholders_but_cannot_change_them(app: FastAPI, world: Any, database: Database) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    analyst = signed_in(app, "analyst")
    page = analyst.get("/detection/rules/packs")
    assert page.status_code == 200 and "%known_cdcs%" in text_of(page) and "dc01.corp.local" in text_of(page)
    assert 'action="/detection/rules/packs/placeholders"' not in page.text
    denied = analyst.post("/detection/rules/packs/placeholders/known_cdcs/delete", data={"csrf_token": csrf_of(page)})
    assert denied.status_code == 403
    assert placeholders_service.current_values(database) == {"known_cdcs": ["dc01.corp.local"]}


def test_the_page_speaks_chinese(app: FastAPI, world: Any, database: Database) -> None:
    set_values(database, "known_cdcs", ["dc01.corp.local"])
    secadmin = signed_in(app, "secadmin", **{"Accept-Language": "zh-CN"})
    page = secadmin.get("/detection/rules/packs")
    assert "占位符" in page.text and "保存占位符" in page.text
