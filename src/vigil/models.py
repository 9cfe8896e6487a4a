"""Every domain's tables, imported once so that Alembic and the tests see the whole schema."""

from vigil.accounts import models as accounts_models
from vigil.core import audit as core_audit
from vigil.core.db import Base
from vigil.detection import models as detection_models
from vigil.incidents import models as incidents_models
from vigil.intel import models as intel_models
from vigil.siem import models as siem_models

metadata = Base.metadata
__all__ = ["accounts_models", "core_audit", "detection_models", "intel_models", "metadata", "siem_models"]
__all__ += ["incidents_models"]
