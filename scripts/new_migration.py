"""Write the next Alembic migration: the difference between the models and the newest revision.

Usage: .venv/bin/python scripts/new_migration.py "add assets"

The schema of the newest revision is built in a throw-away SQLite store and compared with every
model registered in ``vigil.models``; the new file is ``src/vigil/migrations/versions/NNNN_<slug>.py``.
Read it before committing: autogenerate misses renames and some type changes, and `ruff check`
may still ask for a shorter line or two. Batch operations are
used so that the same migration runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script

from vigil.accounts.bootstrap import MIGRATIONS, alembic_config
from vigil.core.db import Database
from vigil.models import metadata


def next_revision_id() -> str:
    numbers = [int(match.group(1)) for path in (MIGRATIONS / "versions").glob("*.py")
               if (match := re.match(r"(\d+)_", path.name))]
    return f"{max(numbers, default=0) + 1:04d}"


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].strip():
        print(__doc__, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vigil-migration-") as folder:
        url = f"sqlite:///{Path(folder) / 'vigil.db'}"
        database = Database(url)
        config = alembic_config(url)
        try:
            with database.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                changes = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           metadata)
                if not changes:
                    print("the models match the newest revision: nothing to migrate", file=sys.stderr)
                    return 1
                written = command.revision(config, message=argv[0].strip(), autogenerate=True,
                                           rev_id=next_revision_id())
        finally:
            database.dispose()
    scripts = written if isinstance(written, list) else [written]
    for script in scripts:
        if isinstance(script, Script):
            # Autogenerate leaves unused imports and unsorted blocks: let ruff tidy what it safely can.
            subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "--quiet", script.path], check=False)
            print(script.path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
