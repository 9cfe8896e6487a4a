"""ATT&CK's groups, campaigns and software from the offline data, as actors, campaigns and malware."""

from __future__ import annotations

from sqlalchemy import func, select
from tests.conftest import cli_context

from vigil.core.db import Database, Scope
from vigil.intel import service
from vigil.intel.models import IntelEntity


def test_groups_campaigns_and_software_become_entities_with_their_techniques(database: Database) -> None:
    with database.transaction(Scope.system()) as session:
        recorded = service.import_attack(cli_context(session))
    assert recorded > 900
    with database.transaction(Scope.system()) as session:
        apt28 = session.scalars(select(IntelEntity).where(IntelEntity.name == "APT28")).one()
        assert apt28.kind == "intrusion-set" and apt28.attack_ids[0] == "G0007"
        assert "Fancy Bear" in apt28.aliases
        assert "T1566.001" in apt28.attack_ids  # spearphishing attachment, a technique it uses
        software = {r["name"] for r in apt28.related if r["kind"] in ("malware", "tool")}
        assert "Mimikatz" in software  # software it uses
        campaign = session.scalars(select(IntelEntity).where(IntelEntity.kind == "campaign").limit(1)).one()
        assert campaign.attack_ids[0].startswith("C") and campaign.first_seen is not None
        total = session.scalar(select(func.count()).select_from(IntelEntity))
    with database.transaction(Scope.system()) as session:
        service.import_attack(cli_context(session))  # again: the same entities, updated
        assert session.scalar(select(func.count()).select_from(IntelEntity)) == total
