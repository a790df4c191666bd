"""What `/milestone …` was asked: the subcommand and its arguments, read from the typed text."""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import date

from core.enums import TEST_KINDS, Severity
from core.names import TAG_RULE, is_tag

REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
TAG_PREFIX = "tag:"
# Subcommands that take a milestone and a value: a new name, a tag, a date.
WITH_VALUE = ("clone", "tag", "start")
_WORD = re.compile(r'"([^"]*)"?|(\S+)')


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
        Subcommand(
            "list",
            "[owner/repo] [tag:<tag>]",
            "list tag:release",
            "current milestones (overdue and active, then planned), most urgent first; or those with a tag",
            needs_milestone=False,
        ),
        Subcommand(
            "status", "<milestone>", "status v2.0", "the gate of a milestone: criteria, blockers, sign-off, forecast"
        ),
        Subcommand(
            "defects",
            "<milestone> [critical|high|medium|low]",
            "defects v2.0 high",
            "open defects, blocking ones first",
            options=tuple(severity.value for severity in Severity),
        ),
        Subcommand(
            "tests",
            "<milestone> [failing|untested|flaky|quarantined]",
            "tests v2.0 flaky",
            "failing tests by cause (the default), tests not run yet, flaky or quarantined tests",
            options=TEST_KINDS,
        ),
        Subcommand("trend", "<milestone>", "trend v2.0", "pass rate and blocking defects over 30 days, regressions"),
        Subcommand(
            "clone",
            "<milestone> <new name> [YYYY-MM-DD]",
            "clone v2.0 v2.1 2027-03-01",
            "a new milestone with the same gate (plans, thresholds, approvers, tags), due that day; no history "
            "(approvers and workspace admins)",
        ),
        Subcommand(
            "tag",
            "<milestone> <tag>",
            "tag v2.0 release",
            "tag a milestone, which lists and digests filter by (approvers and workspace admins)",
        ),
        Subcommand(
            "start",
            "<milestone> <YYYY-MM-DD>",
            'start "Sprint 25" 2026-12-07',
            "set the start date: planned until then, no alerts before it (approvers and workspace admins)",
        ),
        Subcommand(
            "signoff",
            "<milestone>",
            "signoff v2.0",
            "ask the approvers for sign-off here, with Approve and Reject buttons",
        ),
        Subcommand(
            "signoffs",
            "<milestone> [dismiss @person]",
            "signoffs v2.0",
            "every sign-off decision, withdrawal and dismissal; admins dismiss someone's standing decision",
        ),
        Subcommand(
            "approvers",
            "<milestone> [add|remove @person|@group …]",
            "approvers v2.0 add @dana",
            "who signs off, and changing who (approvers and workspace admins)",
        ),
        Subcommand(
            "quarantine",
            "<milestone> [add <test> [reason] | remove <test>]",
            "quarantine v2.0 add com.acme.CartTest.testAdd times out on CI",
            "tests kept out of the gate, and changing them (approvers and workspace admins)",
        ),
        Subcommand(
            "subscribe",
            "[milestone|owner/repo] [tag:<tag>] [daily|weekdays|weekly mon] [HH:MM] [Europe/Berlin]",
            "subscribe v2.0 weekdays 09:00 Europe/Berlin",
            "a digest in this channel on a schedule (default: daily at 09:00, your time zone)",
            needs_milestone=False,
        ),
        Subcommand(
            "unsubscribe",
            "[milestone|owner/repo] [tag:<tag>]",
            "unsubscribe v2.0",
            "stop a digest (all of this channel's without a name)",
            needs_milestone=False,
        ),
        Subcommand(
            "subscriptions", "", "subscriptions", "this channel's digests and when they come", needs_milestone=False
        ),
        Subcommand(
            "alerts",
            "on|off",
            "alerts off",
            "live alerts of the linked repository's milestones here",
            needs_milestone=False,
        ),
        Subcommand(
            "link", "<owner/repo>", "link acme/shop", "make a repository this channel's default", needs_milestone=False
        ),
        Subcommand("unlink", "", "unlink", "forget this channel's default repository", needs_milestone=False),
        Subcommand("help", "", "help", "this list", needs_milestone=False),
    )
}


# What a button may run again: the answers that are read-only.
RERUNNABLE = ("list", "status", "defects", "tests", "trend", "signoffs", "approvers", "quarantine")
# The changes a read-only subcommand also makes, after the milestone: `approvers v2.0 add @dana`.
EDITS = {"approvers": ("add", "remove"), "signoffs": ("dismiss",)}
# How Slack escapes a mentioned person or user group in a command's text.
_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^<!subteam\^[A-Z0-9]+\|@?([^>]+)>$")


class UsageError(ValueError):
    """The text does not make a command; `subcommand` is the one it was meant for, if known."""

    def __init__(self, message: str, subcommand: Subcommand | None = None):
        super().__init__(message)
        self.subcommand = subcommand


@dataclass(frozen=True)
class Asker:
    """Who asked and where, as Slack's verified request says."""

    team_id: str
    channel_id: str
    user_id: str


@dataclass(frozen=True)
class Invocation:
    subcommand: Subcommand
    milestone: str | None = None
    repository: str | None = None
    # list: `tag:<tag>`; clone: the new name, tag: the tag, start: the date (as typed).
    option: str | None = None
    # approvers: "add" or "remove", and whom (user ids and @handles); quarantine: the test.
    edit: str | None = None
    members: tuple[str, ...] = ()
    # subscribe, unsubscribe: the words after the subcommand (a scope, then a schedule);
    # quarantine add: the reason.
    words: tuple[str, ...] = ()


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
    # GitHub's repository names ignore case: `Acme/Shop` is acme/shop.
    repositories = {name.lower(): name for name in known_repositories}
    if subcommand.name == "list":
        tags = [word for word in rest if word.lower().startswith(TAG_PREFIX)]
        if len(tags) > 1 or (tags and not is_tag(tags[0][len(TAG_PREFIX) :])):
            raise UsageError(f"list takes one tag, as `{TAG_PREFIX}release`", subcommand)
        found = _with_repository(subcommand, [word for word in rest if word not in tags], repositories)
        return Invocation(subcommand, repository=found.repository, option=tags[0].lower() if tags else None)
    if subcommand.name == "link":
        return _with_repository(subcommand, rest, repositories)
    if subcommand.name in WITH_VALUE:
        return _with_value(subcommand, rest, repositories)
    if subcommand.name in ("subscribe", "unsubscribe", "subscriptions", "alerts"):
        if rest and subcommand.name == "subscriptions":
            raise UsageError("subscriptions takes no arguments", subcommand)
        return Invocation(subcommand, words=tuple(rest))
    edit: str | None = None
    members: tuple[str, ...] = ()
    if subcommand.name == "quarantine":
        return _quarantine(subcommand, rest, repositories)
    if subcommand.name in EDITS:
        rest, edit, members = _edit(subcommand, rest, EDITS[subcommand.name])
    # A repository and an option may follow the name, in either order.
    repository = option = None
    while len(rest) > 1:
        word = rest[-1].lower()
        if repository is None and word in repositories:
            repository = repositories[word]
        elif option is None and word in subcommand.options:
            option = word
        else:
            break
        rest.pop()
    return Invocation(subcommand, " ".join(rest) or None, repository, option, edit, members)


def _quarantine(subcommand: Subcommand, words: list[str], repositories: dict[str, str]) -> Invocation:
    """`v2.0 [owner/repo] add <test> [reason…]`: the test in `members`, the reason in `words`."""
    for index, word in enumerate(words):
        if word.lower() in ("add", "remove") and index > 0:
            edit, after = word.lower(), words[index + 1 :]
            if not after:
                raise UsageError(f"which test to {edit}? Name it as its report does: `{edit} <test>`", subcommand)
            if edit == "remove" and len(after) > 1:
                raise UsageError("remove takes one test", subcommand)
            before = words[:index]
            repository = None
            if len(before) > 1 and before[-1].lower() in repositories:
                repository = repositories[before.pop().lower()]
            return Invocation(subcommand, " ".join(before), repository, None, edit, (after[0],), tuple(after[1:]))
    repository = None
    if len(words) > 1 and words[-1].lower() in repositories:
        repository = repositories[words.pop().lower()]
    return Invocation(subcommand, " ".join(words) or None, repository)


def _with_value(subcommand: Subcommand, words: list[str], repositories: dict[str, str]) -> Invocation:
    """`clone v2.0 v2.1 [date]`, `tag v2.0 release`, `start v2.0 2026-12-07`: the milestone, then
    the value (names with spaces in double quotes); a repository may follow."""
    words = list(words)
    repository = None
    if len(words) > 2 and words[-1].lower() in repositories:
        repository = repositories[words.pop().lower()]
    due: str | None = None
    if subcommand.name == "clone" and len(words) == 3:
        due = words.pop()
    if len(words) != 2:
        raise UsageError(f"write `{subcommand.name} {subcommand.arguments}`", subcommand)
    milestone, value = words
    if subcommand.name == "tag" and not is_tag(value):
        raise UsageError(f"“{value}”: {TAG_RULE}", subcommand)
    for day in (value if subcommand.name == "start" else None, due):
        if day is not None:
            try:
                date.fromisoformat(day)
            except ValueError:
                raise UsageError(f"“{day}” is not a date; write it as YYYY-MM-DD", subcommand) from None
    words_after = (due,) if due else ()
    return Invocation(subcommand, milestone, repository, value, words=words_after)


def _edit(
    subcommand: Subcommand, words: list[str], edits: tuple[str, ...]
) -> tuple[list[str], str | None, tuple[str, ...]]:
    """`v2.0 add @dana @qa-leads`: the words before the edit, the edit, and whom."""
    for index, word in enumerate(words):
        if word.lower() in edits and index > 0:
            members = [_member(subcommand, mention) for mention in words[index + 1 :]]
            if not members:
                raise UsageError(f"whom to {word.lower()}? Mention them: `{word.lower()} @person`", subcommand)
            return words[:index], word.lower(), tuple(dict.fromkeys(members))
    return words, None, ()


def _member(subcommand: Subcommand, word: str) -> str:
    found = _MENTION.match(word)
    if found:
        return found.group(1) or "@" + found.group(2).lower()
    if word.startswith("@") and len(word) > 1:
        return word.lower()
    raise UsageError(f"“{word}” is not a person or user group; mention them with @", subcommand)


def _with_repository(subcommand: Subcommand, rest: list[str], repositories: dict[str, str]) -> Invocation:
    if len(rest) > 1:
        raise UsageError(f"{subcommand.name} takes one repository, as owner/repo", subcommand)
    if not rest:
        if subcommand.name == "link":
            raise UsageError("link needs the repository, as owner/repo", subcommand)
        return Invocation(subcommand)
    if not REPOSITORY.match(rest[0]):
        raise UsageError(f"“{rest[0]}” is not a repository; write it as owner/repo", subcommand)
    return Invocation(subcommand, repository=repositories.get(rest[0].lower(), rest[0]))


def typed(name: str) -> str:
    """A milestone name as it would be typed after the command: quoted when it has spaces."""
    return f'"{name}"' if " " in name else name


def _words(text: str) -> list[str]:
    """Words, with double-quoted runs kept whole (an unclosed quote runs to the end).

    Slack sends &, < and > escaped and turns typed quotes into curly ones. Apostrophes
    and backslashes are part of names (`Bob's release`, `release\\2`), not syntax.
    """
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = text.replace("“", '"').replace("”", '"')
    return [quoted or word for quoted, word in _WORD.findall(text) if quoted or word]


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
        # Unescaped: a button value holds 2,000 characters, and \uXXXX would take six each.
        fields = {key: value for key, value in asdict(self).items() if value is not None}
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)

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
            or subcommand.name not in RERUNNABLE
            or not _texts(query.repository, query.milestone, query.option)
        ):
            raise UsageError("this button is out of date")
        named = query.repository is not None and query.milestone is not None
        tagged = subcommand.name == "list" and (query.option or "").startswith(TAG_PREFIX)
        if (subcommand.needs_milestone and not named) or (
            query.option is not None and query.option not in subcommand.options and not tagged
        ):
            raise UsageError("this button is out of date")
        if subcommand.name == "list" and query.milestone is not None:
            raise UsageError("this button is out of date")
        return query


def _texts(*values: object) -> bool:
    return all(value is None or isinstance(value, str) for value in values)
