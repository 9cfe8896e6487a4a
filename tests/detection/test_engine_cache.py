"""The engine's compiled conditions kept in a cache folder: the same answers, compiled once."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.detection.sigma import Engine, rule_from_yaml
from vigil.detection.sigma import engine as engine_module

RULE = rule_from_yaml("""
title: Net user add
id: 2d7a1f3e-5b2c-4f7e-9a0d-6c1b8e9f0a31
logsource: {category: process_creation, product: windows}
detection:
    selection: {Image|endswith: '\\\\net.exe', CommandLine|contains|all: [' user ', ' /add']}
    filter: {User: 'CORP\\\\provisioning'}
    condition: selection and not filter
level: high
""")
EVENT = {"Channel": "Microsoft-Windows-Sysmon/Operational", "EventID": 1, "Image": "C:\\Windows\\net.exe",
         "CommandLine": "net user mallory P@ss /add", "User": "CORP\\alice"}


def test_a_second_engine_loads_the_compiled_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = Engine([RULE], code_cache=tmp_path)
    [cached] = list(tmp_path.glob("conditions-*.marshal"))
    assert first.match(EVENT) == [RULE]

    def no_compiling(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled again although the cache holds it")

    monkeypatch.setattr(engine_module, "compile", no_compiling, raising=False)
    second = Engine([RULE], code_cache=tmp_path)
    assert second.match(EVENT) == [RULE]
    assert second.match({**EVENT, "User": "CORP\\provisioning"}) == []
    cached.write_bytes(b"damaged")
    monkeypatch.undo()
    assert Engine([RULE], code_cache=tmp_path).match(EVENT) == [RULE]  # a damaged cache is compiled again
