"""The repository policy (PRODUCT.md section 5) as the engine reads it: `PolicyFile`, its
milestone entries (`MilestonePolicy`) and their parts, validated by pydantic.

`core.policy_file` reads `.github/milestones.yml` into these. Paths name a place in
the file: mapping keys joined by dots, list items as `[index]`; a key that is not a plain
word (letters, digits, `_`, `-`) is written in double quotes, JSON-style. So
`milestones."v2.0".plans[1]` is the second plan of milestone `v2.0`, and
`milestones.default.signoff.quorum` is the quorum of the `default` entry.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from datetime import date
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.approvers import check_entry, is_user
from core.enums import SEVERITY_ORDER, Severity
from core.metrics import RECENT_RUNS
from core.names import TAG_RULE, is_tag
from core.selectors import GLOB_CHARS, PLAN_PREFIX
from core.wording import plural
from core.zones import ScheduleError, check_zone

DEFAULT_SOURCE = ".github/milestones.yml"
DEFAULT_ENTRY = "default"

Loc = tuple[str | int, ...]


def render_path(loc: Loc) -> str:
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            key = part if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part) else json.dumps(part, ensure_ascii=False)
            rendered += f".{key}" if rendered else key
    return rendered


class LocatedProblems(ValueError):
    """Problems found by a cross-field check, each at a location relative to the error.

    Pydantic places a validator's error at the model (or field) that raised it; the
    loader reads these locations back so that the line points at the offending item.
    """

    def __init__(self, problems: list[tuple[Loc, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{render_path(loc)}: {message}" for loc, message in problems))


def _between_0_and_1(value: float) -> float:
    if not 0 <= value <= 1:  # NaN fails this too
        raise ValueError("must be between 0 and 1")
    return value


# Strict scalars: YAML already types its values, and `pass_rate: true` is never meant as 1.0.
Ratio = Annotated[StrictFloat, AfterValidator(_between_0_and_1)]
DefectLimit = Annotated[StrictInt, Field(ge=0)]


def _normalise_label(label: str) -> str:
    return label.strip().casefold()


class _PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DefectsConfig(_PolicyModel):
    labels: list[str] = Field(default_factory=lambda: ["bug"])
    verify_label: str = "verified"
    # A map given in the file replaces this one as a whole.
    severity_labels: dict[Severity, list[str]] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: ["P0", "severity: critical", "critical"],
            Severity.HIGH: ["P1", "high"],
            Severity.MEDIUM: ["P2", "medium"],
            Severity.LOW: ["P3", "low"],
        }
    )

    def severity_for(self, labels: Iterable[str]) -> Severity:
        present = {_normalise_label(label) for label in labels}
        for severity in SEVERITY_ORDER:
            if any(_normalise_label(label) in present for label in self.severity_labels.get(severity, ())):
                return severity
        return Severity.NONE

    def is_defect(self, labels: Iterable[str]) -> bool:
        defect_labels = {_normalise_label(label) for label in self.labels}
        return any(_normalise_label(label) in defect_labels for label in labels)


class PlanConfig(_PolicyModel):
    workflow: str | None = None
    artifacts: str = "*"


class SignoffConfig(_PolicyModel):
    approvers: list[str] = Field(default_factory=list)
    quorum: int | Literal["all"] = "all"
    prevent_self_approval: StrictBool = False
    allow_early_signoff: StrictBool = False

    @field_validator("approvers")
    @classmethod
    def _approvers_are_users_or_groups(cls, approvers: list[str]) -> list[str]:
        return list(dict.fromkeys(check_entry(entry) for entry in approvers))

    @field_validator("quorum", mode="before")
    @classmethod
    def _quorum_is_count_or_all(cls, value: object) -> object:
        # `type(...) is int` because bool is an int to Python, and `quorum: yes` means nothing.
        if value == "all" or (type(value) is int and value >= 1):
            return value
        raise ValueError("must be a whole number of at least 1, or 'all'")

    @field_validator("quorum")
    @classmethod
    def _quorum_within_approvers(cls, quorum: int | Literal["all"], info: ValidationInfo) -> int | Literal["all"]:
        # Approvers kept in Slack (none listed here) or user groups: the count is not known here.
        approvers = info.data.get("approvers")
        if quorum == "all" or not approvers or not all(is_user(entry) for entry in approvers):
            return quorum
        count = len(approvers)
        if quorum > count:
            raise ValueError(f"quorum {quorum} is more than the {plural(count, 'approver')}")
        return quorum

    @property
    def required_approvals(self) -> int:
        return len(self.approvers) if self.quorum == "all" else self.quorum


class QuarantineEntry(_PolicyModel):
    """A test (or tests, by glob) kept out of the gate's counts, with why and until when."""

    test: str
    reason: str = ""
    expires: date | None = None

    @model_validator(mode="before")
    @classmethod
    def _a_plain_selector_is_an_entry(cls, value: object) -> object:
        return {"test": value} if isinstance(value, str) else value

    @field_validator("test")
    @classmethod
    def _names_tests(cls, test: str) -> str:
        test = test.strip()
        if not test or test.startswith(PLAN_PREFIX):
            raise ValueError("must name a test or a glob of tests")
        return test


class FlakyConfig(_PolicyModel):
    # auto: tests seen flaky in `after` of their last runs are quarantined until
    # `release_after` consecutive passes; off: only the listed ones and Slack's.
    quarantine: Literal["auto", "off"] = "off"
    after: Annotated[StrictInt, Field(ge=1, le=RECENT_RUNS)] = 3
    release_after: Annotated[StrictInt, Field(ge=1, le=RECENT_RUNS)] = 10


def _time_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_zone(value)
    except ScheduleError as error:
        raise ValueError(str(error)) from None


TimeZone = Annotated[str, AfterValidator(_time_zone)]
Weight = Annotated[StrictFloat | StrictInt, Field(ge=0)]


class ProgressWeights(_PolicyModel):
    """How much each criterion counts towards the completion figure (a weighted mean)."""

    tests: Weight = 1.0
    coverage: Weight = 1.0
    defects: Weight = 1.0
    signoff: Weight = 1.0
    includes: Weight = 1.0


class MilestonePolicy(_PolicyModel):
    plans: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    required: list[str] = Field(default_factory=list)
    pass_rate: Ratio = 0.95
    required_pass_rate: Ratio = 1.0
    max_open_defects: dict[Severity, DefectLimit] = Field(
        default_factory=lambda: {Severity.CRITICAL: 0, Severity.HIGH: 0}
    )
    require_verified: StrictBool = False
    coverage: Ratio = 1.0
    signoff: SignoffConfig = Field(default_factory=SignoffConfig)
    informational: StrictBool = False
    close_on_complete: StrictBool = False
    # Live alerts in the linked channels (false: digests only).
    alerts: StrictBool = True
    # allow: a failing required test whose linked defects are all open and within the
    # limits counts under defects instead of failing the tests criterion.
    known_failures: Literal["block", "allow"] = "block"
    # Given (even empty), the file owns the list and Slack cannot change it.
    quarantine: list[QuarantineEntry] | None = None
    flaky: FlakyConfig = Field(default_factory=FlakyConfig)
    # Before its start a milestone is planned: evaluated, but it raises no alerts.
    start: date | None = None
    tags: list[str] = Field(default_factory=list)
    progress: ProgressWeights = Field(default_factory=ProgressWeights)
    # Milestones this one rolls up: names or globs ("Sprint *"), all complete for its gate.
    includes: list[str] = Field(default_factory=list)
    allow_closed: StrictBool = False
    # Where "today" is for overdue and days left; the file's `timezone`, else TZ, when unset.
    timezone: TimeZone | None = None

    @field_validator("tags")
    @classmethod
    def _tags_are_words(cls, tags: list[str]) -> list[str]:
        problems: list[tuple[Loc, str]] = [((index,), TAG_RULE) for index, tag in enumerate(tags) if not is_tag(tag)]
        if problems:
            raise LocatedProblems(problems)
        return list(dict.fromkeys(tags))

    def includes_name(self, own_name: str, name: str) -> bool:
        """Whether `name` is one of the milestones this one rolls up (never itself)."""
        return name != own_name and any(
            name == pattern or (GLOB_CHARS & set(pattern) and fnmatch.fnmatchcase(name, pattern))
            for pattern in self.includes
        )

    @field_validator("required")
    @classmethod
    def _plan_selectors_name_included_plans(cls, required: list[str], info: ValidationInfo) -> list[str]:
        plans = info.data.get("plans", [])
        problems: list[tuple[Loc, str]] = []
        for index, selector in enumerate(required):
            selector = selector.strip()
            if not selector.startswith(PLAN_PREFIX):
                continue
            plan = selector.removeprefix(PLAN_PREFIX).strip()
            if not plan:
                problems.append(((index,), f"'{PLAN_PREFIX}' must be followed by a plan name"))
            elif plans and plan not in plans:
                problems.append(((index,), f"plan '{plan}' is not one of this milestone's plans ({', '.join(plans)})"))
        if problems:
            raise LocatedProblems(problems)
        return required

    def branch_matches(self, branch: str | None) -> bool:
        """Whether launches on `branch` count; `*` also matches `/`, so `release/*` covers `release/2.0/rc`."""
        if not self.branches:
            return True
        return branch is not None and any(fnmatch.fnmatchcase(branch, pattern) for pattern in self.branches)


class PolicyFile(_PolicyModel):
    defects: DefectsConfig = Field(default_factory=DefectsConfig)
    plans: dict[str, PlanConfig] = Field(default_factory=dict)
    milestones: dict[str, MilestonePolicy] = Field(default_factory=dict)
    # The team's time zone for every milestone that names none.
    timezone: TimeZone | None = None

    @model_validator(mode="after")
    def _no_roll_up_cycles(self) -> PolicyFile:
        named = [name for name in self.milestones if name != DEFAULT_ENTRY and not GLOB_CHARS & set(name)]
        edges = {name: [child for child in named if self.milestones[name].includes_name(name, child)] for name in named}
        problems: list[tuple[Loc, str]] = []
        for name in named:
            cycle = _cycle_from(name, edges)
            if cycle is None:
                continue
            child = cycle[1]
            index = next(
                index
                for index, pattern in enumerate(self.milestones[name].includes)
                if child == pattern or fnmatch.fnmatchcase(child, pattern)
            )
            problems.append((("milestones", name, "includes", index), "includes form a cycle: " + " -> ".join(cycle)))
        if problems:
            raise LocatedProblems(problems)
        return self

    @model_validator(mode="after")
    def _milestone_plans_are_declared(self) -> PolicyFile:
        problems: list[tuple[Loc, str]] = [
            (
                ("milestones", milestone, "plans", index),
                f"unknown plan '{plan}'; declare it under plans: (with no workflow for upload-only plans)",
            )
            for milestone, policy in self.milestones.items()
            for index, plan in enumerate(policy.plans)
            if plan not in self.plans
        ]
        if problems:
            raise LocatedProblems(problems)
        return self

    def entry_for(self, milestone_name: str) -> str | None:
        """The key of the entry a milestone takes: its own, else the first glob that matches,
        else `default`; None when the file has none of them."""
        if milestone_name in self.milestones:
            return milestone_name
        for pattern in self.milestones:
            if pattern != DEFAULT_ENTRY and GLOB_CHARS & set(pattern) and fnmatch.fnmatchcase(milestone_name, pattern):
                return pattern
        return DEFAULT_ENTRY if DEFAULT_ENTRY in self.milestones else None

    def policy_for(self, milestone_name: str) -> MilestonePolicy:
        """The exact entry, else the first glob entry that matches, else `default`; never merged
        (but for the file's time zone, which an entry without one takes)."""
        entry = self.entry_for(milestone_name)
        policy = self.milestones[entry] if entry is not None else MilestonePolicy()
        if policy.timezone is None and self.timezone is not None:
            policy = policy.model_copy(update={"timezone": self.timezone})
        return policy

    def plan_for_workflow(self, workflow_file: str, workflow_name: str) -> list[str]:
        """The plans fed by a workflow run, named by its file (`.github/workflows/ci.yml`) or its name."""
        names = {PurePosixPath(workflow_file).name, workflow_name}
        return [plan for plan, config in self.plans.items() if config.workflow is not None and config.workflow in names]


def _cycle_from(start: str, edges: dict[str, list[str]]) -> list[str] | None:
    """A path of includes from `start` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for child in edges.get(name, ()):
            if child == start:
                return [*path, child]
            if child not in seen:
                seen.add(child)
                stack.append((child, [*path, child]))
    return None
