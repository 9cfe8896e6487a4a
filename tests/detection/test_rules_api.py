"""/api/v1/rules and /api/v1/rule-packs through the app with real tokens and sessions: filters, a rule and
its YAML, settings and bulk changes (audited, never half-applied), uploads of packs with their diff,
broken rules reported, hostile and oversized uploads refused, and who may do what."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.support import assert_problem, audit_records, web_session
from tests.detection.test_rules_service import rows, sigma_rule, uid_of, zip_of

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.config import Settings, load_settings
from vigil.core.context import Context
from vigil.core.db import Database, Scope
from vigil.detection import rules_service
from vigil.detection.rules_import import add_rule_text, install_starter_pack
from vigil.detection.schemas_rules import EnablePolicy
from vigil.web.app import create_app
from vigil.web.deps import SESSION_COOKIE


def matrix_rule_id(database: Database) -> int:
    """A fresh enabled rule (in the pack "matrix"), for the role matrix to read or change."""
    with database.transaction(Scope.system()) as session:
        ctx = Context(session=session, actor=audit.Actor(None, "test-setup", accounts.root_unit_id(session)))
        result = add_rule_text(ctx, text=sigma_rule(f"Matrix {uuid.uuid4().hex}"), pack="matrix",
                               enable=EnablePolicy.all)
    rule_id = result.added[0].id
    assert rule_id is not None
    return rule_id


@pytest.fixture
def starter(world: Any) -> dict[str, Any]:
    install_starter_pack(world.database)
    return rows(world.database, "vigil-starter")


def upload(client: TestClient, world: Any, name: str, content: bytes, *, user: str = "secadmin",
           **form: str) -> Any:
    return client.post("/api/v1/rule-packs/import", headers=world.headers(user), data=form,
                       files={"file": (name, content, "application/zip")})


def test_listing_filters_and_pages(client: TestClient, world: Any, starter: dict[str, Any]) -> None:
    h = world.headers("analyst")
    everything = client.get("/api/v1/rules", headers=h, params={"limit": 10}).json()
    assert everything["total"] == 49 and len(everything["items"]) == 10
    titles = [item["title"] for item in everything["items"]]
    assert titles == sorted(titles)
    second = client.get("/api/v1/rules", headers=h, params={"limit": 10, "offset": 10}).json()
    assert not {i["id"] for i in second["items"]} & {i["id"] for i in everything["items"]}
    linux = client.get("/api/v1/rules", headers=h, params={"product": "linux", "limit": 500}).json()
    assert linux["total"] == sum(1 for row in starter.values() if row.product == "linux") > 0
    assert all(item["product"] == "linux" for item in linux["items"])
    t1059 = client.get("/api/v1/rules", headers=h, params={"technique": "T1059", "limit": 500}).json()
    assert t1059["total"] > 0 and all(any(t.startswith("T1059") for t in i["techniques"]) for i in t1059["items"])
    assert_problem(client.get("/api/v1/rules", headers=h, params={"technique": "1059"}), 422, "bad-input")
    assert_problem(client.get("/api/v1/rules", headers=h, params={"level": "severe"}), 422)


def test_a_rule_and_its_yaml(client: TestClient, world: Any, starter: dict[str, Any]) -> None:
    h = world.headers("analyst")
    row = min(starter.values(), key=lambda r: r.id)
    read = client.get(f"/api/v1/rules/{row.id}", headers=h).json()
    assert read["rule_uid"] == row.rule_uid and read["pack"] == "vigil-starter" and read["enabled"] is True
    assert read["author"] == row.author and read["references"] == row.references
    yaml = client.get(f"/api/v1/rules/{row.id}/yaml", headers=h)
    assert yaml.headers["content-type"].startswith("application/yaml") and yaml.text == row.yaml
    assert_problem(client.get("/api/v1/rules/999999", headers=h), 404, "not-found")
    assert_problem(client.get("/api/v1/rules/999999/yaml", headers=h), 404, "not-found")
    packs = client.get("/api/v1/rule-packs", headers=h).json()
    assert packs["total"] == 1
    assert [(p["name"], p["rule_count"], p["errors"]) for p in packs["items"]] == [("vigil-starter", 49, [])]


def test_settings_change_is_audited_and_follows_into_enabled_rules(client: TestClient, world: Any,
                                                                   starter: dict[str, Any]) -> None:
    row = min(starter.values(), key=lambda r: r.id)
    version, _ = rules_service.enabled_rules(world.database)
    h = world.headers("secadmin")
    changed = client.patch(f"/api/v1/rules/{row.id}", headers=h,
                           json={"level_override": "critical", "notes": "seen on jump hosts"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["level_override"], body["effective_level"], body["notes"]) == ("critical", "critical",
                                                                                "seen on jump hosts")
    overridden, rules = rules_service.enabled_rules(world.database)
    assert overridden != version
    assert next(r for r in rules if r.id == row.rule_uid).level == "critical"
    reset = client.patch(f"/api/v1/rules/{row.id}", headers=h, json={"level_override": None}).json()
    assert reset["level_override"] is None and reset["effective_level"] == row.level and reset["notes"]
    assert client.patch(f"/api/v1/rules/{row.id}", headers=h, json={"enabled": False}).json()["enabled"] is False
    disabled, rules = rules_service.enabled_rules(world.database)
    assert disabled not in (version, overridden) and row.rule_uid not in {r.id for r in rules}
    records = audit_records(world.database, action="detection.rule.update")
    assert [r.details["changes"] for r in records] == [
        {"level_override": [None, "critical"], "notes": "changed"}, {"level_override": ["critical", None]},
        {"enabled": [True, False]}]
    assert all(r.actor == "secadmin" for r in records)
    assert_problem(client.patch(f"/api/v1/rules/{row.id}", headers=h, json={"level_override": "severe"}), 422)
    assert_problem(client.patch(f"/api/v1/rules/{row.id}", headers=h, json={"hits": 0}), 422)


def test_an_analyst_or_a_branch_administrator_cannot_change_a_rule(client: TestClient, world: Any,
                                                                   starter: dict[str, Any]) -> None:
    row = min(starter.values(), key=lambda r: r.id)
    for user in ("analyst", "secadmin_a", "viewer"):
        h = world.headers(user)
        assert_problem(client.patch(f"/api/v1/rules/{row.id}", headers=h, json={"enabled": False}), 403,
                       "permission-denied")
        assert_problem(client.post("/api/v1/rules/bulk", headers=h, json={"ids": [row.id], "enabled": False}),
                       403, "permission-denied")
        assert_problem(upload(client, world, "x.zip", zip_of({"r.yml": sigma_rule("X").encode()}), user=user), 403)
    assert_problem(client.get("/api/v1/rules", headers=world.headers("viewer")), 403, "permission-denied")
    assert rows(world.database, "vigil-starter")[row.rule_uid].enabled
    assert len(rows(world.database)) == 49
    denied = audit_records(world.database, action="auth.denied", actor="analyst")
    assert any(r.target_id == f"PATCH /api/v1/rules/{row.id}" for r in denied)


def test_a_signed_in_browser_needs_the_csrf_token(client: TestClient, world: Any, starter: dict[str, Any]) -> None:
    row = min(starter.values(), key=lambda r: r.id)
    secret, csrf = web_session(world.database, "secadmin")
    cookie = {"Cookie": f"{SESSION_COOKIE}={secret}"}
    assert_problem(client.patch(f"/api/v1/rules/{row.id}", headers=cookie, json={"enabled": False}), 403,
                   "csrf-failed")
    done = client.patch(f"/api/v1/rules/{row.id}", headers={**cookie, "X-CSRF-Token": csrf}, json={"enabled": False})
    assert done.status_code == 200 and done.json()["enabled"] is False


def test_bulk_changes_all_or_nothing(client: TestClient, world: Any, starter: dict[str, Any]) -> None:
    h = world.headers("secadmin")
    ids = sorted(row.id for row in starter.values())[:5]
    assert_problem(client.post("/api/v1/rules/bulk", headers=h, json={"ids": [*ids, 999999], "enabled": False}),
                   404, "not-found")
    assert all(row.enabled for row in rows(world.database).values())
    done = client.post("/api/v1/rules/bulk", headers=h, json={"ids": ids, "enabled": False}).json()
    assert done == {"changed": 5, "ids": ids}
    assert client.post("/api/v1/rules/bulk", headers=h, json={"ids": ids, "enabled": False}).json()["changed"] == 0
    assert sum(not row.enabled for row in rows(world.database).values()) == 5
    assert_problem(client.post("/api/v1/rules/bulk", headers=h, json={"ids": [], "enabled": True}), 422)
    records = audit_records(world.database, action="detection.rule.disable")
    assert len(records) == 1 and records[0].details["ids"] == ids


def test_uploading_a_pack_returns_its_diff_and_an_update_shows_what_changed(client: TestClient, world: Any) -> None:
    first = upload(client, world, "sigma_core.zip", zip_of({
        "rules/windows/whoami.yml": sigma_rule("Whoami").encode(),
        "rules/windows/net.yml": sigma_rule("Net Use", image="\\net.exe").encode(),
        "rules/windows/noisy.yml": sigma_rule("Noisy", status="experimental", image="\\cmd.exe").encode(),
        "rules/windows/broken.yml": sigma_rule("Broken").replace("condition: selection", "condition: nothing").encode(),
    }))
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["created"] is True and body["pack"]["name"] == "sigma_core" and body["enable"] == "stable-test"
    assert sorted(c["title"] for c in body["added"]) == ["Net Use", "Noisy", "Whoami"]
    assert [c["title"] for c in body["left_disabled"]] == ["Noisy"]
    assert len(body["errors"]) == 1
    assert body["errors"][0].startswith("sigma_core.zip!rules/windows/broken.yml:17: ")
    assert body["pack"]["errors"] == body["errors"]
    whoami = next(c["id"] for c in body["added"] if c["title"] == "Whoami")
    client.patch(f"/api/v1/rules/{whoami}", headers=world.headers("secadmin"), json={"notes": "keep me"})
    second = upload(client, world, "sigma_core.zip", zip_of({
        "rules/windows/whoami.yml": sigma_rule("Whoami", level="critical").encode(),
        "rules/windows/noisy.yml": sigma_rule("Noisy", status="experimental", image="\\cmd.exe").encode(),
        "rules/windows/fresh.yml": sigma_rule("Fresh", image="\\fresh.exe").encode()})).json()
    assert second["created"] is False
    assert ([c["title"] for c in second["added"]], [c["title"] for c in second["updated"]],
            [c["title"] for c in second["removed"]], second["unchanged"], second["errors"]) == (
        ["Fresh"], ["Whoami"], ["Net Use"], 1, [])
    kept = client.get(f"/api/v1/rules/{whoami}", headers=world.headers("analyst")).json()
    assert (kept["notes"], kept["level"]) == ("keep me", "critical")


def test_a_pasted_rule_is_added_to_a_pack_without_removing_the_others(client: TestClient, world: Any) -> None:
    h = world.headers("secadmin")
    one = client.post("/api/v1/rule-packs/import", headers=h, data={"yaml": sigma_rule("One")}).json()
    two = client.post("/api/v1/rule-packs/import", headers=h, data={"yaml": sigma_rule("Two", image="\\2.exe"),
                                                                     "enable": "none"}).json()
    assert one["pack"]["name"] == two["pack"]["name"] == "local"
    assert (len(two["added"]), two["unchanged"], two["removed"]) == (1, 1, [])
    assert {row.title: row.enabled for row in rows(world.database, "local").values()} == {"One": True, "Two": False}
    broken = client.post("/api/v1/rule-packs/import", headers=h, data={"yaml": "title: x\ndetection: [\n"})
    assert "broken YAML" in assert_problem(broken, 422, "bad-input")["detail"]
    assert_problem(client.post("/api/v1/rule-packs/import", headers=h, data={}), 422, "bad-input")
    assert_problem(client.post("/api/v1/rule-packs/import", headers=h, data={"enable": "some", "yaml": "x"}), 422)


@pytest.mark.parametrize(("members", "reason"), [
    ({"../../etc/evil.yml": b"title: x"}, "points outside the archive"),
    ({"rules/bomb.yml": b"\n" * 5_000_000}, "zip bomb"),
], ids=["path-trick", "bomb"])
def test_a_hostile_zip_is_refused_cleanly(client: TestClient, world: Any, members: dict[str, bytes],
                                          reason: str) -> None:
    archive = zip_of({"rules/good.yml": sigma_rule("Good").encode(), **members})
    refused = upload(client, world, "evil.zip", archive)
    assert reason in assert_problem(refused, 422, "bad-input")["detail"]
    assert rows(world.database) == {}
    assert_problem(upload(client, world, "rules.exe", b"MZ"), 422, "bad-input")
    assert_problem(upload(client, world, "rules.zip", b"not a zip at all"), 422, "bad-input")


def test_an_upload_over_the_size_limit_is_refused(world: Any, settings: Settings, tmp_path: Path) -> None:
    small = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, max_body_bytes=4096)
    with TestClient(create_app(small, world.database), base_url="https://testserver") as client:
        big = zip_of({f"rules/r{i}.yml": sigma_rule(f"Rule {i}", image=f"\\{i}.exe").encode() for i in range(40)})
        assert len(big) > 4096
        assert_problem(upload(client, world, "big.zip", big), 413)
    assert rows(world.database) == {}
    assert uid_of("Rule 1") not in rows(world.database)
