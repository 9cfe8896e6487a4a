"""Request and response shapes of rules management: rules, rule packs, imports and their diff, and a rule's
test cases with their results."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil.core.db import MAX_RECORD_ID
from vigil.core.inputs import Text, refuse_nul

Level = Literal["informational", "low", "medium", "high", "critical"]
MAX_BULK = 5_000  # rules one bulk call changes (SigmaHQ's Windows folder is about 2,400)
MAX_TEST_RECORD = 64 * 1024  # bytes of one test record (UTF-8)
MAX_TEST_CASES = 50  # test cases one rule holds, and events one try runs
Expectation = Literal["match", "no_match"]
Outcome = Literal["match", "no_match", "unreadable", "error"]


def _record_size(value: str) -> str:
    size = len(value.encode("utf-8"))
    if size > MAX_TEST_RECORD:
        raise ValueError(f"the record is {size:,} bytes; at most {MAX_TEST_RECORD:,} (64 KiB) are accepted")
    if not value.strip():
        raise ValueError("the record is empty")
    return value


Record = Annotated[str, AfterValidator(refuse_nul), AfterValidator(_record_size)]
"""A raw record as text (a JSON document, a log line), at most 64 KiB."""


class EnablePolicy(StrEnum):
    """Which newly imported rules start enabled. Rules already imported keep their setting.

    ``stable-test`` (the default): rules whose status is stable or test, or that have no status (a SOC's
    own rules often have none); SigmaHQ's ``experimental`` rules are noisy and start disabled.
    Deprecated and unsupported rules are never enabled on import.
    """

    all = "all"
    stable_test = "stable-test"
    none = "none"


class RulePackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source: str
    version: str
    rule_count: int
    errors: list[str]
    imported_at: datetime
    imported_by: str


class RuleRead(BaseModel):
    """A rule as lists show it: the Sigma metadata and the SOC's settings for it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    pack_id: int
    pack: str
    rule_uid: str
    title: str
    level: str
    level_override: str | None
    effective_level: str
    status: str | None
    product: str | None
    category: str | None
    service: str | None
    tags: list[str]
    tactics: list[str]
    techniques: list[str]
    author: str
    references: list[str]
    description: str
    falsepositives: list[str]
    path: str
    digest: str
    enabled: bool
    notes: str
    hits: int
    false_positives: int
    last_hit_at: datetime | None
    created_at: datetime
    updated_at: datetime
    updated_by: str


class RuleUpdate(BaseModel):
    """Only the fields given change; ``level_override: null`` goes back to the rule's own level."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = None
    level_override: Level | None = Field(default=None, description="The level alerts of this rule get.")
    notes: Text | None = Field(default=None, max_length=10_000, description="The SOC's own notes on the rule.")


class RuleBulkUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] = Field(min_length=1, max_length=MAX_BULK, description="Rule ids (not Sigma ids).")
    enabled: bool


class RuleBulkResult(BaseModel):
    changed: int = Field(description="Rules whose setting changed (the others already had it).")
    ids: list[int]


class RuleFilters(BaseModel):
    """What a rule listing may be narrowed by; every filter given must hold."""

    model_config = ConfigDict(extra="forbid")

    level: Level | None = Field(default=None, description="The effective level (override applied).")
    status: Text | None = Field(default=None, max_length=20)
    tactic: Text | None = Field(default=None, max_length=100, description="An ATT&CK tactic: execution, ...")
    technique: Text | None = Field(default=None, max_length=20, description="T1059 also finds T1059.001.")
    product: Text | None = Field(default=None, max_length=100)
    category: Text | None = Field(default=None, max_length=100)
    service: Text | None = Field(default=None, max_length=100)
    pack: Text | None = Field(default=None, max_length=200, description="A pack's name.")
    enabled: bool | None = None
    q: Text | None = Field(default=None, max_length=200, description="Text in the title (case-insensitive).")


class RuleChange(BaseModel):
    """One rule of an import's diff."""

    rule_uid: str
    title: str
    path: str
    status: str | None = None
    id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)


class ImportResult(BaseModel):
    """What an import changed: the pack, and its rules added, updated (YAML changed), removed, unchanged."""

    pack: RulePackRead
    created: bool = Field(description="The pack was new.")
    added: list[RuleChange]
    updated: list[RuleChange]
    removed: list[RuleChange]
    unchanged: int
    errors: list[str] = Field(description="Rules that could not be loaded, as file:line: reason.")
    enable: EnablePolicy
    left_disabled: list[RuleChange] = Field(description="Added rules the enable policy left disabled.")

    @property
    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
                f"{self.unchanged} unchanged, {len(self.errors)} not loadable")


class RuleTestCreate(BaseModel):
    """A test case of a rule: a raw record, the parser that reads it, and whether the rule must fire on it."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(default="", max_length=200, description="What the case shows; default: numbered.")
    expect: Expectation = Field(description="match: the rule must fire; no_match: a near miss it must not.")
    format: Text = Field(min_length=1, max_length=64, description="A Vigil parser: json, syslog, windows_json, ...")
    record: Record = Field(description="The raw record as text (a JSON document, a log line), at most 64 KiB.")


class RuleTestCase(RuleTestCreate):
    """A stored test case; ``source`` pack: shipped with the rule's pack (an update of the pack replaces it)."""

    source: Literal["pack", "user"] = "user"


class RuleTestTry(BaseModel):
    """One event to try a rule on, stored nowhere."""

    model_config = ConfigDict(extra="forbid")

    format: Text | None = Field(default=None, max_length=64, description="A parser; none: detected.")
    record: Record
    expect: Expectation | None = Field(default=None, description="When given, the result says passed or failed.")


class RuleTestRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[RuleTestTry] = Field(min_length=1, max_length=MAX_TEST_CASES)


class RuleTestResult(BaseModel):
    """One case (or tried event) run through the rule: what was expected, what the engine said."""

    index: int | None = Field(description="The stored case's position (from 0); null for a tried event.")
    name: str
    source: str | None
    expect: Expectation | None
    got: Outcome = Field(description="unreadable: the record did not parse; error: the rule could not run.")
    passed: bool | None = Field(description="null when nothing was expected (a tried event without expect).")
    format: str = Field(description="The parser that read the record (the detected one when none was given).")
    record: str
    error: str | None = None


class RuleTestReport(BaseModel):
    """A rule's test cases (or tried events) with their results."""

    rule_id: int
    rule_uid: str
    title: str
    total: int
    passed: int
    failed: int
    error: str | None = Field(default=None, description="Why the rule could not run at all.")
    results: list[RuleTestResult]

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.error is None
