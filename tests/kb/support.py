"""Helpers of the knowledge-base tests: an acting context, and a throw-away git remote with a clone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from vigil.accounts import service as accounts
from vigil.core import audit
from vigil.core.context import Context
from vigil.core.db import Database, Scope


def actor_context(session: Session, name: str = "author", unit_id: int | None = None) -> Context:
    unit = unit_id if unit_id is not None else accounts.root_unit_id(session)
    return Context(session=session, actor=audit.Actor(None, name, unit))


@contextmanager
def acting(database: Database, scope: Scope | None = None, name: str = "author",
           unit_id: int | None = None) -> Iterator[Context]:
    with database.transaction(scope or Scope.system()) as session:
        yield actor_context(session, name, unit_id)


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=30)
    return done.stdout


def bare_remote(tmp_path: Path, name: str = "wiki.git") -> Path:
    """An empty bare repository, as a Gitea or GitLab wiki starts."""
    remote = tmp_path / name
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote), cwd=tmp_path)
    return remote


def checkout(remote: Path, where: Path) -> Path:
    """A fresh clone of ``remote`` (what a reader of the wiki sees)."""
    git("clone", "--quiet", str(remote), str(where), cwd=where.parent)
    return where
