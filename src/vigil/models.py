"""Every domain's tables, imported once so that Alembic and the tests see the whole schema."""

from vigil.accounts import models as accounts_models
from vigil.core import audit as core_audit
from vigil.core.db import Base
from vigil.detection import models as detection_models
from vigil.incidents import evidence_models as incidents_evidence_models
from vigil.incidents import models as incidents_models
from vigil.intel import models as intel_models
from vigil.kb import models as kb_models
from vigil.response import oncall_models as response_oncall_models
from vigil.response import paging_models as response_paging_models
from vigil.response.actions import models as response_action_models
from vigil.response.notifications import models as notification_models
from vigil.response.playbooks import models as playbook_models
from vigil.siem import models as siem_models

metadata = Base.metadata
__all__ = ["accounts_models", "core_audit", "detection_models", "incidents_evidence_models", "incidents_models",
           "intel_models", "kb_models", "metadata", "notification_models", "playbook_models", "response_action_models",
           "response_oncall_models", "response_paging_models", "siem_models"]
