"""Sigma rules: loading (``load``), compiling onto Vigil's events (``compile``, ``logsources``) and the
engine that matches them (``engine``)."""

from vigil.detection.sigma.engine import Engine
from vigil.detection.sigma.load import LoadResult, load_cached, load_rules, rule_from_yaml
from vigil.detection.sigma.rules import LEVELS, Rule, RuleError

__all__ = ["LEVELS", "Engine", "LoadResult", "Rule", "RuleError", "load_cached", "load_rules", "rule_from_yaml"]
