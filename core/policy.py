"""The repository policy file, `.github/milestones.yml` (PRODUCT.md section 5).

`load_policy` turns the file into a `PolicyFile`, or into `PolicyError`s that each name
a line and a path, so that whoever edits the file can fix it from the message alone.
It never raises for bad input, and it reports every problem it can find at once.

Paths: mapping keys joined by dots, list items as `[index]`; a key that is not a plain
word (letters, digits, `_`, `-`) is written in double quotes, JSON-style. So
`milestones."v2.0".plans[1]` is the second plan of milestone `v2.0`, and
`milestones.default.signoff.quorum` is the quorum of the `default` entry.

Mapping keys are taken as written: a milestone named `1.10` stays "1.10" rather than
becoming the number 1.1.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from difflib import get_close_matches
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from yaml.reader import ReaderError

from core.approvers import check_entry, is_user
from core.enums import SEVERITY_ORDER, Severity
from core.names import TAG_RULE, is_tag
from core.schedule import ScheduleError, check_zone
from core.selectors import GLOB_CHARS, PLAN_PREFIX
from core.wording import plural

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


@dataclass(frozen=True)
class PolicyError:
    source: str
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return ": ".join(part for part in (where, self.path, self.message) if part)


@dataclass(frozen=True)
class PolicyLoad:
    policy: PolicyFile | None
    errors: list[PolicyError]

    @property
    def ok(self) -> bool:
        return self.policy is not None and not self.errors


class _RefusedYAML(yaml.MarkedYAMLError):
    """Well-formed YAML that a policy file does not accept."""


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _PolicyLoader(yaml.SafeLoader):
    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        # Refusing aliases outright is the simple defence against exponential expansion
        # ("billion laughs"); a policy file never needs them.
        if self.check_event(yaml.AliasEvent):
            problem = "aliases (*name) are not allowed; write the value out in full"
            raise _RefusedYAML(problem=problem, problem_mark=self.peek_event().start_mark)
        return super().compose_node(parent, index)

    def compose_single(self) -> yaml.Node | None:
        self.get_event()  # stream start
        root = None if self.check_event(yaml.StreamEndEvent) else self.compose_document()
        if not self.check_event(yaml.StreamEndEvent):
            problem = "only one YAML document is allowed; remove the second '---'"
            raise _RefusedYAML(problem=problem, problem_mark=self.peek_event().start_mark)
        return root


@dataclass
class _Origin:
    key: yaml.Node | None
    value: yaml.Node


class _Document:
    """The YAML node tree as plain data, remembering which nodes every path came from."""

    def __init__(self, loader: _PolicyLoader, root: yaml.Node, source: str):
        self._loader = loader
        self._source = source
        self.origins: dict[Loc, _Origin] = {(): _Origin(None, root)}
        self.errors: list[PolicyError] = []
        self.data = self._value(root, ())

    def line(self, loc: Loc, at_key: bool = False) -> int:
        # A path missing from the file (a missing item) lands on its nearest ancestor.
        while loc not in self.origins:
            loc = loc[:-1]
        origin = self.origins[loc]
        return _line(origin.key if at_key and origin.key is not None else origin.value)

    def _value(self, node: yaml.Node, loc: Loc) -> Any:
        if isinstance(node, yaml.MappingNode) and node.tag == "tag:yaml.org,2002:map":
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode) and node.tag == "tag:yaml.org,2002:seq":
            items = []
            for index, item in enumerate(node.value):
                self.origins[(*loc, index)] = _Origin(None, item)
                items.append(self._value(item, (*loc, index)))
            return items
        if isinstance(node, yaml.ScalarNode):
            return self._loader.construct_object(node)
        raise _RefusedYAML(problem=f"the tag {node.tag} is not allowed", problem_mark=node.start_mark)

    def _mapping(self, node: yaml.MappingNode, loc: Loc) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self._error(loc, key_node, "keys must be plain text")
                continue
            key = key_node.value
            if key in first_lines:
                # PyYAML would silently keep the last one; either guess could be wrong.
                self._error((*loc, key), key_node, f"duplicate key '{key}' (first at line {first_lines[key]})")
                continue
            first_lines[key] = _line(key_node)
            self.origins[(*loc, key)] = _Origin(key_node, value_node)
            result[key] = self._value(value_node, (*loc, key))
        return result

    def _error(self, loc: Loc, node: yaml.Node, message: str) -> None:
        self.errors.append(PolicyError(self._source, render_path(loc), _line(node), message))


_MESSAGES = {
    "string_type": "must be text",
    "list_type": "must be a list, like [a, b]",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "greater_than_equal": "must be at least {ge}",
    "date_type": "must be a date, YYYY-MM-DD",
    "date_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_parsing": "must be a date, YYYY-MM-DD",
    "date_from_datetime_inexact": "must be a date, YYYY-MM-DD",
}


def _keys_expected_at(loc: Loc) -> Iterable[str]:
    match loc:
        case ():
            return PolicyFile.model_fields
        case ("defects",):
            return DefectsConfig.model_fields
        case ("plans", _):
            return PlanConfig.model_fields
        case ("milestones", _):
            return MilestonePolicy.model_fields
        case ("milestones", _, "signoff"):
            return SignoffConfig.model_fields
        case ("milestones", _, "progress"):
            return ProgressWeights.model_fields
    return ()


def _translate(error: ErrorDetails) -> list[tuple[Loc, bool, str]]:
    """One pydantic error as (path, whether the line is the key's, message) items."""
    loc, kind, value = tuple(error["loc"]), error["type"], error["input"]
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, LocatedProblems):
        return [((*loc, *relative), False, message) for relative, message in problem.problems]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        message = f"unknown key '{key}'"
        if suggestions := get_close_matches(key, _keys_expected_at(loc[:-1]), n=1):
            message += f"; did you mean '{suggestions[0]}'?"
        return [(loc, True, message)]
    if loc and loc[-1] == "[key]":
        choices = ", ".join(severity.value for severity in Severity)
        return [(loc[:-1], True, f"unknown severity '{value}'; use one of {choices}")]
    if value is None and kind in _MESSAGES:
        return [(loc, False, "has no value; give it one or remove the key")]
    if kind in _MESSAGES:
        message = _MESSAGES[kind].format(**error.get("ctx", {}))
        if kind == "string_type" and not isinstance(value, (dict, list)):
            message += "; put it in quotes"
        return [(loc, False, message)]
    return [(loc, False, error["msg"].removeprefix("Value error, "))]


def _read_document(text: str, source: str) -> _Document | None:
    """The file's single YAML document, or None when it holds nothing; YAML problems raise."""
    loader = _PolicyLoader(text)
    try:
        root = loader.compose_single()
        if root is None or root.tag == "tag:yaml.org,2002:null":
            return None
        if not isinstance(root, yaml.MappingNode):
            problem = "the file must be a mapping with the keys defects, plans and milestones"
            raise _RefusedYAML(problem=problem, problem_mark=root.start_mark)
        return _Document(loader, root, source)
    finally:
        loader.dispose()


def load_policy(text: str | bytes, source: str = DEFAULT_SOURCE) -> PolicyLoad:
    """Parse and validate a policy file; the errors come sorted by line."""

    def failed(line: int | None, message: str) -> PolicyLoad:
        return PolicyLoad(None, [PolicyError(source, "", line, message)])

    if isinstance(text, bytes):
        raw = text
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            return failed(raw.count(b"\n", 0, error.start) + 1, "the file is not UTF-8 text")
    try:
        document = _read_document(text, source)
    except _RefusedYAML as error:
        return failed(error.problem_mark.line + 1 if error.problem_mark else None, str(error.problem))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        kind = "unsupported" if isinstance(error, yaml.constructor.ConstructorError) else "invalid"
        message = f"{kind} YAML: {error.problem}"
        if error.context and error.context_mark:
            message += f" ({error.context} at line {error.context_mark.line + 1})"
        return failed(mark.line + 1 if mark else None, message)
    except ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        return failed(line, f"character #x{error.character:04x} is not allowed in YAML")
    except RecursionError:
        return failed(None, "the YAML is nested too deeply")
    if document is None:
        return PolicyLoad(PolicyFile(), [])

    errors = document.errors
    policy: PolicyFile | None = None
    try:
        policy = PolicyFile.model_validate(document.data)
    except ValidationError as invalid:
        for details in invalid.errors():
            for loc, at_key, message in _translate(details):
                errors.append(PolicyError(source, render_path(loc), document.line(loc, at_key), message))
    errors.sort(key=lambda error: error.line or 0)
    return PolicyLoad(None if errors else policy, errors)
