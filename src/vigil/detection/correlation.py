"""Sigma correlation rules in Vigil: load them (``correlation_rules``) and evaluate them over the matches
of their base rules (``correlation_state``). See docs/detection-correlation.md.

Typical use::

    correlations, errors = load_correlations(sources, base_rules)
    engine = CorrelationEngine.restore(correlations, saved_state)  # or CorrelationEngine(correlations)
    for rule in sigma_engine.match(event):
        hits = engine.observe(rule.id, event, event_time)
    saved_state = engine.snapshot()
"""

from vigil.detection.correlation_rules import (
    TYPES,
    CorrelationRule,
    RuleRef,
    Threshold,
    load_correlations,
    silenced_rules,
)
from vigil.detection.correlation_state import (
    CorrelationEngine,
    CorrelationHit,
    CorrelationStats,
    EventSummary,
)

__all__ = [
    "TYPES",
    "CorrelationEngine",
    "CorrelationHit",
    "CorrelationRule",
    "CorrelationStats",
    "EventSummary",
    "RuleRef",
    "Threshold",
    "load_correlations",
    "silenced_rules",
]
