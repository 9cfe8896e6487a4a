"""The tamper-evident audit trail: real actions chain up; any edit or deletion in the database is
caught and named; the ORM refuses to change records; concurrent writers never fork the chain."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, text, update

from vigil.core import audit
from vigil.core.audit import AuditHead, AuditRecord
from vigil.core.db import Database, Scope
from vigil.core.errors import Conflict


def verify(database: Database) -> audit.Verification:
    with database.transaction(Scope.system()) as session:
        return audit.verify(session)


def seqs(database: Database) -> list[int]:
    with database.transaction(Scope.system()) as session:
        return list(session.scalars(select(AuditRecord.seq).order_by(AuditRecord.seq)))


def raw(database: Database, sql: str, **params: Any) -> None:
    """Change the store behind the application's back, as someone with database access could."""
    with database.engine.begin() as connection:
        connection.execute(text(sql), params)


@pytest.fixture
def acted(world: Any, client: TestClient) -> Any:
    """A trail with real actions on it: a user created, changed and granted a role, a policy change,
    a denial, and a failed sign-in."""
    h = world.headers("sysadmin")
    made = client.post("/api/v1/users", headers=h, json={"username": "linked", "password": "Chained-User-Pass-1!",
                                                          "unit_id": world.branch_a})
    assert made.status_code == 201
    user_id = made.json()["id"]
    assert client.patch(f"/api/v1/users/{user_id}", headers=h, json={"display_name": "Chained"}).status_code == 200
    assert client.post(f"/api/v1/users/{user_id}/grants", headers=world.headers("secadmin"),
                       json={"role": "analyst", "unit_id": world.branch_a}).status_code == 201
    assert client.put("/api/v1/security/policy", headers=world.headers("secadmin"), json={
        "password_min_length": 14, "password_min_classes": 3, "password_max_age_days": 90,
        "max_failed_logins": 5, "lockout_minutes": 15, "token_max_days": 365}).status_code == 200
    assert client.get("/api/v1/audit", headers=h).status_code == 403
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer vgl_not-a-token"}).status_code == 401
    return world


def test_real_actions_leave_an_intact_chain(acted: Any) -> None:
    result = verify(acted.database)
    assert result.ok, result
    numbers = seqs(acted.database)
    assert numbers == list(range(1, len(numbers) + 1))
    assert result.checked == len(numbers)
    with acted.database.transaction(Scope.system()) as session:
        actions = set(session.scalars(select(AuditRecord.action)))
    assert {"user.create", "user.update", "user.role.grant", "policy.update", "auth.denied", "auth.token"} <= actions


@pytest.mark.parametrize("column, value", [
    ("actor", "someone else"),
    ("outcome", "denied-by-nobody"),
    ("details", '{"reason": "nothing to see"}'),
    ("at", "2020-01-01 00:00:00.000000"),
    ("hash", "f" * 64),
])
def test_editing_one_field_in_the_database_is_caught_naming_the_record(acted: Any, column: str, value: str) -> None:
    victim = seqs(acted.database)[len(seqs(acted.database)) // 2]
    raw(acted.database, f"UPDATE audit_records SET {column} = :value WHERE seq = :seq", value=value, seq=victim)
    result = verify(acted.database)
    assert not result.ok
    assert result.first_bad_seq == victim
    assert result.reason


def test_deleting_a_middle_record_is_caught(acted: Any) -> None:
    victim = seqs(acted.database)[3]
    raw(acted.database, "DELETE FROM audit_records WHERE seq = :seq", seq=victim)
    result = verify(acted.database)
    assert (result.ok, result.first_bad_seq) == (False, victim)
    assert "missing" in result.reason


def test_deleting_the_last_record_is_caught(acted: Any) -> None:
    last = seqs(acted.database)[-1]
    raw(acted.database, "DELETE FROM audit_records WHERE seq = :seq", seq=last)
    result = verify(acted.database)
    assert (result.ok, result.first_bad_seq) == (False, last)
    assert "removed" in result.reason


def test_rewriting_a_record_with_a_fresh_hash_breaks_the_next_link(acted: Any) -> None:
    """Recomputing the edited record's own hash does not help: the next record still points at the old one."""
    numbers = seqs(acted.database)
    victim = numbers[2]
    with acted.database.transaction(Scope.system()) as session:
        entry = session.scalar(select(AuditRecord).where(AuditRecord.seq == victim))
        assert entry is not None
        entry.actor = "forger"
        forged = audit._digest(entry, entry.prev_hash)
        session.expunge(entry)
    raw(acted.database, "UPDATE audit_records SET actor = 'forger', hash = :hash WHERE seq = :seq",
        hash=forged, seq=victim)
    result = verify(acted.database)
    assert (result.ok, result.first_bad_seq) == (False, victim + 1)


def test_the_orm_refuses_to_change_or_delete_records(acted: Any) -> None:
    before = seqs(acted.database)
    with pytest.raises(Conflict), acted.database.transaction(Scope.system()) as session:
        entry = session.scalar(select(AuditRecord).order_by(AuditRecord.seq))
        assert entry is not None
        entry.actor = "someone else"
        session.flush()
    with pytest.raises(Conflict), acted.database.transaction(Scope.system()) as session:
        entry = session.scalar(select(AuditRecord).order_by(AuditRecord.seq))
        session.delete(entry)
        session.flush()
    with pytest.raises(Conflict), acted.database.transaction(Scope.system()) as session:
        session.execute(update(AuditRecord).values(actor="someone else"))
    with pytest.raises(Conflict), acted.database.transaction(Scope.system()) as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == before[-1]))
    with pytest.raises(Conflict), acted.database.transaction(Scope.system()) as session:
        session.execute(update(AuditHead).values(seq=0))
    assert seqs(acted.database) == before
    assert verify(acted.database).ok


def test_concurrent_appenders_leave_one_intact_chain(world: Any) -> None:
    """Several threads, each with its own session, append at once: no fork, no duplicate, no gap."""
    start = len(seqs(world.database))
    threads_n, per_thread = 6, 15
    barrier = threading.Barrier(threads_n)
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            barrier.wait()
            for n in range(per_thread):
                with world.database.transaction(Scope.system()) as session:
                    actor = audit.Actor(None, f"worker-{worker}", world.hq, "127.0.0.1")
                    audit.record(session, actor=actor, action="test.append", details={"n": n})
                    if n % 3 == 0:  # some transactions append two records in two flushes
                        session.flush()
                        audit.record(session, actor=actor, action="test.append", details={"n": n, "again": True})
        except BaseException as exc:  # reported below, with the thread's own traceback
            failures.append(exc)

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    numbers = seqs(world.database)
    expected = start + threads_n * (per_thread + len(range(0, per_thread, 3)))
    assert numbers == list(range(1, expected + 1))
    with world.database.transaction(Scope.system()) as session:
        assert session.scalar(select(func.count(func.distinct(AuditRecord.prev_hash)))) == expected
    result = verify(world.database)
    assert result.ok and result.checked == expected, result


def test_verify_endpoint_reports_the_break(acted: Any, client: TestClient) -> None:
    h = acted.headers("auditor")
    assert client.post("/api/v1/audit/verify", headers=h).json()["ok"] is True
    victim = seqs(acted.database)[5]
    raw(acted.database, "UPDATE audit_records SET action = 'nothing.happened' WHERE seq = :seq", seq=victim)
    report = client.post("/api/v1/audit/verify", headers=h)
    assert report.status_code == 200
    body = report.json()
    assert body["ok"] is False
    assert body["first_bad_seq"] == victim
    assert body["reason"]
    # The failed check is itself on the trail, for the next auditor to see.
    failed = client.get("/api/v1/audit", headers=h, params={"action": "audit.verify", "outcome": "failure"}).json()
    assert failed["total"] == 1
    assert failed["items"][0]["details"]["first_bad_seq"] == victim
