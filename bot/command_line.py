"""What `/milestone …` was asked: the subcommand and its arguments, read from the typed text."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
from typing import Collection

from core.enums import Severity

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
TEST_KINDS = ("failing", "untested", "flaky")


@dataclass(frozen=True)
class Subcommand:
    name: str
    arguments: str
    example: str
    summary: str
    # The last word, when it is one of these, is an option rather than part of the name.
    options: tuple[str, ...] = ()
    needs_milestone: bool = True


SUBCOMMANDS = {
    subcommand.name: subcommand
    for subcommand in (
        Subcommand("list", "[owner/repo]", "list", "open milestones, most urgent first", needs_milestone=False),
        Subcommand("status", "<milestone>", "status v2.0", "the gate of a milestone: criteria, blockers, sign-off, forecast"),
        Subcommand(
            "defects",
            "<milestone> [critical|high|medium|low]",
            "defects v2.0 high",
            "open defects, blocking ones first",
            options=tuple(severity.value for severity in Severity),
        ),
        Subcommand(
            "tests",
            "<milestone> [failing|untested|flaky]",
            "tests v2.0 flaky",
            "failing tests (the default), tests not run yet, or flaky tests",
            options=TEST_KINDS,
        ),
        Subcommand("trend", "<milestone>", "trend v2.0", "pass rate and blocking defects over 30 days, regressions"),
        Subcommand("link", "<owner/repo>", "link acme/shop", "make a repository this channel's default", needs_milestone=False),
        Subcommand("unlink", "", "unlink", "forget this channel's default repository", needs_milestone=False),
        Subcommand("help", "", "help", "this list", needs_milestone=False),
    )
}


class UsageError(ValueError):
    """The text does not make a command; `subcommand` is the one it was meant for, if known."""

    def __init__(self, message: str, subcommand: Subcommand | None = None):
        super().__init__(message)
        self.subcommand = subcommand


@dataclass(frozen=True)
class Invocation:
    subcommand: Subcommand
    milestone: str | None = None
    repository: str | None = None
    option: str | None = None


def parse(text: str, known_repositories: Collection[str] = ()) -> Invocation:
    """`known_repositories` tells a trailing `owner/repo` apart from a milestone named `release/2.0`."""
    words = _words(text)
    if not words:
        return Invocation(SUBCOMMANDS["help"])
    first, rest = words[0].lower(), words[1:]
    subcommand = SUBCOMMANDS.get(first)
    if subcommand is None:
        raise UsageError(f"there is no subcommand “{words[0]}”")
    if subcommand.name in ("help", "unlink"):
        if rest and subcommand.name == "unlink":
            raise UsageError("unlink takes no arguments", subcommand)
        return Invocation(subcommand)
    if subcommand.name in ("list", "link"):
        return _with_repository(subcommand, rest)
    repository = None
    if len(rest) > 1 and rest[-1] in known_repositories:
        repository = rest.pop()
    option = None
    if len(rest) > 1 and rest[-1].lower() in subcommand.options:
        option = rest.pop().lower()
    return Invocation(subcommand, " ".join(rest) or None, repository, option)


def _with_repository(subcommand: Subcommand, rest: list[str]) -> Invocation:
    if len(rest) > 1:
        raise UsageError(f"{subcommand.name} takes one repository, as owner/repo", subcommand)
    if not rest:
        if subcommand.name == "link":
            raise UsageError("link needs the repository, as owner/repo", subcommand)
        return Invocation(subcommand)
    if not REPOSITORY.match(rest[0]):
        raise UsageError(f"“{rest[0]}” is not a repository; write it as owner/repo", subcommand)
    return Invocation(subcommand, repository=rest[0])


def _words(text: str) -> list[str]:
    # Slack turns typed quotes into curly ones; names with spaces may be quoted either way.
    text = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


@dataclass(frozen=True)
class Query:
    """A command with its milestone found: what a Refresh or Share button runs again.

    Carried in a button's value, so it names things and grants nothing: whoever clicks
    is answered as if they had typed the command.
    """

    subcommand: str
    repository: str | None = None
    milestone: str | None = None
    option: str | None = None

    def encode(self) -> str:
        return json.dumps({key: value for key, value in asdict(self).items() if value is not None}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: str) -> Query:
        try:
            data = json.loads(value)
            query = cls(**data)
        except (TypeError, ValueError) as error:
            raise UsageError(f"this button is out of date ({error})") from None
        subcommand = SUBCOMMANDS.get(query.subcommand) if isinstance(query.subcommand, str) else None
        if (
            subcommand is None
            or not subcommand.needs_milestone
            or not isinstance(query.repository, str)
            or not isinstance(query.milestone, str)
            or (query.option is not None and query.option not in subcommand.options)
        ):
            raise UsageError("this button is out of date")
        return query
