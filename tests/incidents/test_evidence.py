"""Evidence files: streamed in with their SHA-256, kept under a generated name whatever the client calls them,
refused over the size limit with nothing left behind, another unit's evidence not found, and a chain of custody
that records every upload, download, hand-over and verification."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from vigil.core.config import Settings, load_settings
from vigil.core.db import Database, Scope
from vigil.incidents import evidence
from vigil.incidents.evidence import safe_name
from vigil.incidents.evidence_models import CustodyEntry, Evidence
from vigil.web.app import create_app

from .support import acting, open_one

LIMIT = 4096


@pytest.fixture
def small_settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, evidence_max_bytes=LIMIT)


@pytest.fixture
def api(small_settings: Settings, database: Database) -> Iterator[TestClient]:
    app: FastAPI = create_app(small_settings, database)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def upload(api: TestClient, world: Any, incident_id: int, body: bytes, name: str, user: str = "analyst") -> Any:
    return api.post(f"/api/v1/incidents/{incident_id}/evidence", params={"name": name}, content=body,
                    headers={**world.headers(user), "Content-Type": "application/octet-stream"})


def stored_files(settings: Settings) -> list[Path]:
    folder = settings.evidence_dir
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def evidence_rows(database: Database) -> int:
    with database.transaction(Scope.system()) as session:
        return session.scalar(select(func.count()).select_from(Evidence)) or 0


def test_an_upload_is_stored_with_its_hash_and_downloaded_under_its_name(
        world: Any, api: TestClient, small_settings: Settings) -> None:
    incident_id = open_one(world.database)
    body = b"MZ\x90\x00 suspicious binary " * 50
    created = upload(api, world, incident_id, body, "dropper.exe")
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["sha256"] == hashlib.sha256(body).hexdigest() and item["size"] == len(body)
    assert item["original_name"] == "dropper.exe" and item["holder"] == "analyst"
    assert [step["action"] for step in item["custody"]] == ["upload"]
    assert item["custody"][0]["source_ip"] and item["custody"][0]["sha256"] == item["sha256"]
    files = stored_files(small_settings)
    assert len(files) == 1 and files[0].read_bytes() == body and "dropper" not in files[0].name
    got = api.get(f"/api/v1/incidents/{incident_id}/evidence/{item['id']}/download", headers=world.headers("viewer"))
    assert got.status_code == 200 and got.content == body
    assert 'filename="dropper.exe"' in got.headers["content-disposition"]
    incident = api.get(f"/api/v1/incidents/{incident_id}", headers=world.headers("viewer")).json()
    assert any(item["sha256"] in entry["summary"] for entry in incident["timeline"])


def test_a_too_big_upload_is_refused_and_leaves_nothing(world: Any, api: TestClient,
                                                        small_settings: Settings) -> None:
    incident_id = open_one(world.database)
    refused = upload(api, world, incident_id, b"x" * (LIMIT + 1), "big.bin")
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(10):
            yield b"y" * 1000
    streamed = api.post(f"/api/v1/incidents/{incident_id}/evidence", params={"name": "big.bin"}, content=chunks(),
                        headers=world.headers("analyst"))
    assert streamed.status_code == 413
    assert stored_files(small_settings) == [] and evidence_rows(world.database) == 0
    empty = upload(api, world, incident_id, b"", "empty.txt")
    assert empty.status_code == 422 and stored_files(small_settings) == []


@pytest.mark.parametrize(("name", "shown"), [
    ("../../etc/passwd", "passwd"),
    ("/etc/shadow", "shadow"),
    ("..\\..\\windows\\system32\\cmd.exe", "cmd.exe"),
    ("evil\x00.txt", "evil.txt"),
    ("..", "evidence.bin"),
    ('a"b\r\nSet-Cookie: x.txt', "abSet-Cookie x.txt"),
])
def test_path_trick_names_are_stored_safely(name: str, shown: str, world: Any, api: TestClient,
                                            small_settings: Settings) -> None:
    assert safe_name(name) == shown
    incident_id = open_one(world.database)
    created = upload(api, world, incident_id, b"content", name)
    assert created.status_code == 201, created.text
    assert created.json()["original_name"] == shown
    files = stored_files(small_settings)
    assert len(files) == 1 and files[0].parent == small_settings.evidence_dir
    got = api.get(f"/api/v1/incidents/{incident_id}/evidence/{created.json()['id']}/download",
                  headers=world.headers("analyst"))
    assert "\r" not in got.headers["content-disposition"] and ".." not in got.headers["content-disposition"]


def test_another_units_evidence_is_not_found(world: Any, api: TestClient) -> None:
    incident_id = open_one(world.database)  # at headquarters
    item = upload(api, world, incident_id, b"secret", "memory.dmp").json()
    for path in (f"/api/v1/incidents/{incident_id}/evidence", f"/api/v1/incidents/{incident_id}/evidence/{item['id']}",
                 f"/api/v1/incidents/{incident_id}/evidence/{item['id']}/download"):
        assert api.get(path, headers=world.headers("staff_b")).status_code == 404
    assert upload(api, world, incident_id, b"more", "x.bin", user="staff_b").status_code == 403
    assert api.get(f"/api/v1/incidents/{incident_id}/evidence/{item['id']}/download",
                   headers=world.headers("auditor")).status_code == 403


def test_the_chain_of_custody_records_every_step_and_verification(world: Any, api: TestClient,
                                                                   small_settings: Settings) -> None:
    incident_id = open_one(world.database)
    item = upload(api, world, incident_id, b"disk image", "disk.img").json()
    base = f"/api/v1/incidents/{incident_id}/evidence/{item['id']}"
    assert api.get(f"{base}/download", headers=world.headers("viewer")).status_code == 200
    handed = api.post(f"{base}/handover", json={"to": "responder", "note": "for the lab"},
                      headers=world.headers("analyst"))
    assert handed.status_code == 200 and handed.json()["holder"] == "responder"
    assert api.post(f"{base}/handover", json={"to": "staff_b"}, headers=world.headers("analyst")).status_code == 422
    intact = api.post(f"{base}/verify", headers=world.headers("responder")).json()
    assert intact["outcome"] == "intact" and intact["sha256"] == item["sha256"]
    stored_files(small_settings)[0].write_bytes(b"tampered")
    assert api.post(f"{base}/verify", headers=world.headers("responder")).json()["outcome"] == "mismatch"
    stored_files(small_settings)[0].unlink()
    assert api.post(f"{base}/verify", headers=world.headers("responder")).json()["outcome"] == "missing"
    custody = api.get(base, headers=world.headers("viewer")).json()["custody"]
    assert [(c["action"], c["actor"]) for c in custody] == [
        ("upload", "analyst"), ("download", "viewer"), ("handover", "analyst"), ("verify", "responder"),
        ("verify", "responder"), ("verify", "responder")]
    assert custody[2]["to_holder"] == "responder" and custody[2]["note"] == "for the lab"
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count()).select_from(CustodyEntry)) == 6


def test_a_stored_file_goes_when_its_transaction_rolls_back(world: Any, small_settings: Settings) -> None:
    incident_id = open_one(world.database)
    folder = small_settings.evidence_dir

    def received() -> evidence.Received:
        incoming = evidence.Incoming(folder, LIMIT)
        incoming.write(b"rolled back")
        return incoming.finish()
    with pytest.raises(RuntimeError), acting(world.database, "analyst") as ctx:
        evidence.add_evidence(ctx, incident_id=incident_id, received=received(), folder=folder, name="a.bin")
        raise RuntimeError("the request failed after the file was stored")
    with acting(world.database, "analyst") as ctx:
        with pytest.raises(RuntimeError), ctx.session.begin_nested():
            evidence.add_evidence(ctx, incident_id=incident_id, received=received(), folder=folder, name="b.bin")
            raise RuntimeError("a form's savepoint was undone")
        kept = evidence.add_evidence(ctx, incident_id=incident_id, received=received(), folder=folder, name="c.bin")
        kept_name = kept.stored_name
    assert [p.name for p in stored_files(small_settings)] == [kept_name]
