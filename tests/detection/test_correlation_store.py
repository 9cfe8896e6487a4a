"""Correlation rules through a rule pack: imported beside their base rules, kept apart from them in live
detection, resolved against what is enabled."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from vigil.core import audit
from vigil.core.db import Database, Scope
from vigil.detection import rules_service
from vigil.detection.correlation_store import enabled_correlations
from vigil.detection.models import DetectionRule
from vigil.detection.rules_import import import_pack
from vigil.detection.rules_service import enabled_rules

PACK = """
title: Failed logon
id: 5d1bd5a6-9a6f-4e0c-8f5e-1c3f0c1b7a01
name: failed_logon
status: stable
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625}
    condition: selection
level: low
---
title: Password guessing from one address
id: 7a9b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c02
status: stable
correlation:
    type: event_count
    rules: [failed_logon]
    group-by: [IpAddress]
    timespan: 5m
    condition: {gte: 10}
level: high
"""


def actor() -> audit.Actor:
    return audit.Actor(None, "test", 1)


def test_a_pack_stores_correlations_beside_their_base_rules(database: Database, tmp_path: Path) -> None:
    (tmp_path / "guessing.yml").write_text(PACK)
    result = import_pack(database, path=tmp_path, name="local", actor=actor())
    assert sorted(change.title for change in result.added) == ["Failed logon", "Password guessing from one address"]
    with database.transaction(Scope.system()) as session:
        kinds = {row.title: row.kind for row in session.scalars(select(DetectionRule))}
    assert kinds == {"Failed logon": "sigma", "Password guessing from one address": "correlation"}
    _, base = enabled_rules(database)
    assert [rule.title for rule in base] == ["Failed logon"]  # the engine never sees the correlation
    _, correlations = enabled_correlations(database, base)
    assert [(c.title, c.type, c.threshold.count) for c in correlations] == [
        ("Password guessing from one address", "event_count", 10)]


def test_a_correlation_whose_base_rule_is_disabled_is_left_out(database: Database, tmp_path: Path) -> None:
    (tmp_path / "guessing.yml").write_text(PACK)
    import_pack(database, path=tmp_path, name="local", actor=actor())
    with database.transaction(Scope.system()) as session:
        session.scalars(select(DetectionRule).where(DetectionRule.kind == "sigma")).one().enabled = False
    version_before, _ = enabled_correlations(database, enabled_rules(database)[1])
    _, base = enabled_rules(database)
    version, correlations = enabled_correlations(database, base)
    assert base == [] and correlations == []
    with database.transaction(Scope.system()) as session:
        for row in session.scalars(select(DetectionRule)):
            row.level_override = "critical" if row.kind == "correlation" else None
            row.enabled = True
    version_after, correlations = enabled_correlations(database, enabled_rules(database)[1])
    assert version_after != version and [c.level for c in correlations] == ["critical"]
    assert version_before == version


def test_compiled_rules_are_kept_across_restarts(database: Database, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "guessing.yml").write_text(PACK)
    import_pack(database, path=tmp_path / "pack", name="local", actor=actor())
    monkeypatch.setattr(rules_service, "_compiled", {})
    monkeypatch.setattr(rules_service, "_disk_loaded", False)
    version, rules = enabled_rules(database, cache_dir=tmp_path / "cache")
    assert [rule.title for rule in rules] == ["Failed logon"]
    assert (tmp_path / "cache" / rules_service.COMPILED_CACHE).is_file()

    def no_compiling(*args: object) -> None:
        raise AssertionError("compiled again although the cache holds it")

    monkeypatch.setattr(rules_service, "_compiled", {})  # a new process
    monkeypatch.setattr(rules_service, "_disk_loaded", False)
    monkeypatch.setattr(rules_service, "_compile", no_compiling)
    assert enabled_rules(database, cache_dir=tmp_path / "cache") == (version, rules)
