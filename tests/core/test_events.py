"""Domain events reach subscribers only once their change is committed, savepoints included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from vigil.core.db import Database, Scope
from vigil.core.events import DomainEvent, bus, emit


@dataclass(frozen=True, kw_only=True)
class Happened(DomainEvent):
    what: str


@pytest.fixture
def heard() -> Iterator[list[str]]:
    received: list[str] = []
    unsubscribe = bus.subscribe(Happened, lambda item: received.append(item.what))
    yield received
    unsubscribe()


def say(session: Session, what: str) -> None:
    emit(session, Happened(unit_id=1, actor="test", what=what))


def test_a_released_savepoint_publishes_only_when_the_transaction_commits(database: Database,
                                                                           heard: list[str]) -> None:
    with database.transaction(Scope.system()) as session:
        with session.begin_nested():
            say(session, "inside")
        assert heard == []  # released, not committed: another connection could not see the change yet
        say(session, "after")
    assert heard == ["inside", "after"]


def test_a_rolled_back_savepoint_drops_only_its_own_events(database: Database, heard: list[str]) -> None:
    with database.transaction(Scope.system()) as session:
        say(session, "before")
        with pytest.raises(ValueError), session.begin_nested():
            say(session, "refused")
            raise ValueError("refused")
        with session.begin_nested():
            say(session, "kept")
    assert heard == ["before", "kept"]


def test_a_rolled_back_transaction_publishes_nothing(database: Database, heard: list[str]) -> None:
    with pytest.raises(ValueError), database.transaction(Scope.system()) as session:
        say(session, "never")
        raise ValueError("rolled back")
    with database.transaction(Scope.system()) as session:
        say(session, "next")
    assert heard == ["next"]
