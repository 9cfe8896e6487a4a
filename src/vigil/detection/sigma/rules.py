"""What a loaded Sigma rule is to the rest of Vigil: its metadata, and the conditions the engine runs.

``Rule`` keeps what analysts see (title, level, author and references for the Detection Rule
License's attribution, ATT&CK tags) and ``variants``: the rule's detection after log-source mapping,
one condition tree per way its log source is recorded (a ``process_creation`` rule has a Sysmon
EventID 1 variant and a Security 4688 variant). An event matches the rule when any variant matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from vigil.detection.sigma.predicates import Condition

LEVELS = ("informational", "low", "medium", "high", "critical")
_TECHNIQUE = re.compile(r"attack\.(t\d{4}(?:\.\d{3})?)", re.IGNORECASE)
_GROUP_OR_SOFTWARE = re.compile(r"attack\.[gs]\d{4}", re.IGNORECASE)


class RuleError(Exception):
    """A rule that cannot be loaded: where it is and why, as ``path:line: reason``."""

    def __init__(self, reason: str, *, path: str = "<inline>", line: int | None = None,
                 rule_id: str | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.rule_id = rule_id
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"

    def __reduce__(self) -> tuple[object, ...]:  # picklable with its keyword arguments (compiled cache, workers)
        return (_rule_error, (self.reason, self.path, self.line, self.rule_id))


def _rule_error(reason: str, path: str, line: int | None, rule_id: str | None) -> RuleError:
    return RuleError(reason, path=path, line=line, rule_id=rule_id)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    level: str
    status: str | None = None
    description: str = ""
    author: str = ""
    references: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    product: str | None = None
    category: str | None = None
    service: str | None = None
    falsepositives: tuple[str, ...] = ()
    date: str | None = None
    modified: str | None = None
    path: str = "<inline>"
    pack: str = "local"
    yaml: str = ""
    variants: tuple[Condition, ...] = field(default=(), repr=False, compare=False)

    @property
    def techniques(self) -> tuple[str, ...]:
        """ATT&CK technique IDs from the tags (``attack.t1059.001`` -> ``T1059.001``)."""
        return tuple(dict.fromkeys(m.group(1).upper() for tag in self.tags if (m := _TECHNIQUE.fullmatch(tag))))

    @property
    def tactics(self) -> tuple[str, ...]:
        """ATT&CK tactic names from the tags (``attack.defense-evasion`` -> ``defense-evasion``)."""
        return tuple(tag[len("attack."):].replace("_", "-") for tag in self.tags
                     if tag.lower().startswith("attack.") and not _TECHNIQUE.fullmatch(tag)
                     and not _GROUP_OR_SOFTWARE.fullmatch(tag))

    @property
    def level_rank(self) -> int:
        return LEVELS.index(self.level) if self.level in LEVELS else 0
