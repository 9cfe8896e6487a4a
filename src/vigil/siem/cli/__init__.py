"""The SIEM's commands: `vigil search`, `vigil ingest`, `vigil retention`, `vigil sources`."""

import typer

from vigil.siem.cli import ingest, retention, search


def register(app: typer.Typer) -> None:
    for module in (search, ingest, retention):
        module.register(app)
