"""The offline ATT&CK data (vigil.detection.attack): read from the installed package, Enterprise v18.1,
tactics in matrix order, techniques and sub-techniques with their names, tactics and platforms."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from vigil.detection.attack import DATA_PACKAGE, attack_data, parent_of, technique_ids

ENTERPRISE_TACTICS = [
    "reconnaissance", "resource-development", "initial-access", "execution", "persistence", "privilege-escalation",
    "defense-evasion", "credential-access", "discovery", "lateral-movement", "collection", "command-and-control",
    "exfiltration", "impact",
]


def test_the_data_ships_inside_the_installed_package() -> None:
    folder = Path(str(resources.files(DATA_PACKAGE) / "data"))
    assert folder.is_dir() and any(folder.glob("attack-patterns-lookup-*.json"))
    assert attack_data() is attack_data()  # read once per process


def test_tactics_come_in_matrix_order_with_names_and_ids() -> None:
    data = attack_data()
    assert data.version == "18.1" and data.major_version == "18"
    assert [t.shortname for t in data.tactics] == ENTERPRISE_TACTICS
    execution = data.tactic("execution")
    assert execution is not None and (execution.id, execution.name) == ("TA0002", "Execution")
    command = data.tactic("command-and-control")
    assert command is not None and command.name == "Command and Control"
    assert data.tactic("no-such-tactic") is None


def test_a_sub_technique_has_its_name_tactic_platform_and_parent() -> None:
    data = attack_data()
    powershell = data.technique("T1059.001")
    assert powershell is not None
    assert powershell.name == "PowerShell"
    assert powershell.tactics == ("execution",)
    assert "Windows" in powershell.platforms
    assert powershell.is_subtechnique and powershell.parent_id == "T1059"
    assert powershell.url == "https://attack.mitre.org/techniques/T1059/001"
    parent = data.technique("t1059")  # ids are case-insensitive
    assert parent is not None and parent.name == "Command and Scripting Interpreter" and not parent.is_subtechnique
    assert [sub.id for sub in data.subtechniques("T1059")][:2] == ["T1059.001", "T1059.002"]


def test_a_technique_of_several_tactics_lists_them_in_matrix_order() -> None:
    scheduled = attack_data().technique("T1053")
    assert scheduled is not None and scheduled.name == "Scheduled Task/Job"
    assert scheduled.tactics == ("execution", "persistence", "privilege-escalation")


def test_the_matrix_column_of_a_tactic() -> None:
    data = attack_data()
    column = data.matrix_techniques("credential-access")
    names = [t.name for t in column]
    assert names == sorted(names, key=str.lower)
    assert "OS Credential Dumping" in names and not any(t.is_subtechnique for t in column)
    linux = {t.id for t in data.matrix_techniques("execution", platform="Linux")}
    assert "T1059" in linux and "T1047" not in linux  # WMI is Windows only
    assert "Windows" in data.platforms() and "Linux" in data.platforms()
    # 216 techniques and 475 sub-techniques are active in Enterprise v18.1.
    assert sum(1 for t in data.techniques.values() if not t.is_subtechnique) == 216
    assert sum(1 for t in data.techniques.values() if t.is_subtechnique) == 475


def test_revoked_techniques_are_apart_with_their_replacement() -> None:
    data = attack_data()
    assert data.technique("T1086") is None
    assert data.retired["T1086"].name == "PowerShell" and data.retired["T1086"].revoked
    assert data.replaced_by["T1086"] == "T1059.001"
    assert all(replacement in data.techniques for replacement in data.replaced_by.values())


@pytest.mark.parametrize(("tags", "expected"), [
    (["attack.execution", "attack.t1059.001", "attack.T1059"], ["T1059.001", "T1059"]),
    (["T1003.001", "attack.t1003.001", " t1003 "], ["T1003.001", "T1003"]),
    (["attack.g0016", "attack.s0002", "cve.2021-44228", "attack.t10", "attack.t1059.1", "tlp.white"], []),
])
def test_technique_ids_in_tags(tags: list[str], expected: list[str]) -> None:
    assert technique_ids(tags) == expected


def test_parent_of() -> None:
    assert parent_of("T1059.001") == "T1059" and parent_of("T1059") == "T1059"
