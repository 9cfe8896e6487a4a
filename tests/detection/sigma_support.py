"""Inline Sigma rules for the engine's unit tests, in pySigma's style: a detection block, named events,
which of them match."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from vigil.detection.sigma import Engine, Rule, rule_from_yaml


def sigma(detection: str, *, title: str = "Unit test rule",
          rule_id: str = "6f1f2a52-0c55-4f1e-9d7e-2b1d7b0c9a01") -> Rule:
    """A whole rule around a ``detection:`` block (written as in a rule file, indented or not)."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return rule_from_yaml(
        f"title: '{title}'\n"
        f"id: {rule_id}\n"
        "status: test\n"
        "logsource:\n"
        "    product: vigil_unit_test\n"
        f"detection:\n{body}\n"
        "level: medium\n"
    )


def hits(detection: str, events: Mapping[str, Mapping[str, Any]]) -> set[str]:
    """The names of the events the rule matches."""
    engine = Engine([sigma(detection)])
    return {name for name, event in events.items() if engine.match(event)}
