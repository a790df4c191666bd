"""Reading the repository policy file, `.github/milestones.yml`, into a `core.policy.PolicyFile`.

`load_policy` turns the file into a `PolicyFile`, or into `PolicyError`s that each name
a line and a path (written as `core.policy` describes), so that whoever edits the file
can fix it from the message alone. It never raises for bad input, and it reports every
problem it can find at once.

Mapping keys are taken as written: a milestone named `1.10` stays "1.10" rather than
becoming the number 1.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from yaml.reader import ReaderError

from core.enums import Severity
from core.policy import (
    DEFAULT_SOURCE,
    DefectsConfig,
    FlakyConfig,
    Loc,
    LocatedProblems,
    MilestonePolicy,
    PlanConfig,
    PolicyFile,
    ProgressWeights,
    QuarantineEntry,
    SignoffConfig,
    render_path,
)


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
        # Values already reported as unreadable; their validation errors would say it again.
        self.unreadable: set[Loc] = set()
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
            try:
                return self._loader.construct_object(node)
            except ValueError as error:  # a timestamp that is no date, like 2026-13-31
                self._error(loc, node, f"'{node.value}' is not valid: {error}")
                self.unreadable.add(loc)
                return node.value
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
    "less_than_equal": "must be at most {le}",
    "literal_error": "must be one of {expected}",
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
        case ("milestones", _, "flaky"):
            return FlakyConfig.model_fields
        case ("milestones", _, "quarantine", _):
            return QuarantineEntry.model_fields
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
                if loc in document.unreadable:
                    continue
                errors.append(PolicyError(source, render_path(loc), document.line(loc, at_key), message))
    errors.sort(key=lambda error: error.line or 0)
    return PolicyLoad(None if errors else policy, errors)
