"""Who signs a milestone off: Slack user ids and user-group handles, from the policy file
or, where it lists none, as kept in Slack; groups counted by their members as last read
from Slack."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient

from core.models import Approver, UserGroup

if TYPE_CHECKING:
    from core.policy import MilestonePolicy

USER_ID = re.compile(r"^[UW][A-Z0-9]+$")
HANDLE = re.compile(r"^@?[a-z0-9][a-z0-9._-]{0,79}$")  # HANDLE_LENGTH
# GitHub's logins and organisation names: letters, digits and inner hyphens, at most 39 characters.
GITHUB_LOGIN = r"[a-z0-9](?:[a-z0-9-]{0,37}[a-z0-9])?"
GITHUB_USER = re.compile(rf"^github:{GITHUB_LOGIN}$")
GITHUB_TEAM = re.compile(rf"^github:@{GITHUB_LOGIN}/[a-z0-9][a-z0-9_.-]{{0,79}}$")
GITHUB = "github:"

Source = Literal["policy", "slack"]


def is_user(entry: str) -> bool:
    return bool(USER_ID.match(entry) or GITHUB_USER.match(entry))


def is_github(entry: str) -> bool:
    return entry.startswith(GITHUB)


def github_user(login: str) -> str:
    """How a GitHub person is named among approvers and in the trail (logins are case-insensitive)."""
    return GITHUB + login.lower()


def as_handle(entry: str) -> str:
    """A user-group handle as stored: `@` and lower case (Slack's handles are)."""
    return "@" + entry.lstrip("@").lower()


def normalise(entry: str) -> str:
    """An approver entry: a Slack user id as it is, a GitHub one in lower case, anything else as a group handle."""
    entry = entry.strip()
    if entry.lower().startswith(GITHUB):
        return GITHUB + entry[len(GITHUB) :].lower()
    return entry if is_user(entry) else as_handle(entry)


# Slack's own handles are shorter; a longer one is not a handle and would not fit the column.
HANDLE_LENGTH = 80


def check_entry(entry: str) -> str:
    entry = entry.strip()
    if entry.lower().startswith(GITHUB):
        github = normalise(entry)
        if GITHUB_USER.match(github) or GITHUB_TEAM.match(github):
            return github
        raise ValueError(f"{entry!r} is neither a GitHub login (github:octocat) nor a team (github:@org/team)")
    if is_user(entry) or HANDLE.match(entry.lower()):
        return normalise(entry)
    if len(entry.lstrip("@")) > HANDLE_LENGTH:
        raise ValueError(
            f"{entry[:30]}… is too long for a user-group handle ({len(entry.lstrip('@')):,} characters;"
            f" at most {HANDLE_LENGTH})"
        )
    raise ValueError(
        f"{entry!r} is neither a Slack user id (U…), a user-group handle (@name), "
        "a GitHub login (github:octocat) nor a GitHub team (github:@org/team)"
    )


class Approvers(NamedTuple):
    """A milestone's approvers: as configured, and resolved to people."""

    entries: tuple[str, ...]
    # Where the entries are kept; None when nobody was ever named.
    source: Source | None
    users: tuple[str, ...]
    # Groups whose members are not known yet (never read from Slack, or no such group).
    unresolved: tuple[str, ...]

    @property
    def groups(self) -> tuple[str, ...]:
        """Slack user groups, read from Slack."""
        return tuple(entry for entry in self.entries if not is_user(entry) and not is_github(entry))

    @property
    def teams(self) -> tuple[str, ...]:
        """GitHub teams (`github:@org/team`), read from GitHub."""
        return tuple(entry for entry in self.entries if GITHUB_TEAM.match(entry))

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.users


async def slack_entries(client: BaseDBAsyncClient | None, milestone_id: int) -> list[str]:
    rows = (
        await Approver.filter(milestone_id=milestone_id, active_member__not_isnull=True).order_by("id").using_db(client)
    )
    return [row.member for row in rows]


async def approvers_of(client: BaseDBAsyncClient | None, milestone_id: int, policy: MilestonePolicy) -> Approvers:
    source: Source | None
    if policy.signoff.approvers:
        entries, source = [normalise(entry) for entry in policy.signoff.approvers], "policy"
    else:
        entries = await slack_entries(client, milestone_id)
        source = "slack" if entries else None
    entries = list(dict.fromkeys(entries))
    groups = await group_members(client, [entry for entry in entries if not is_user(entry)])
    users: list[str] = []
    unresolved = []
    for entry in entries:
        if is_user(entry):
            users.append(entry)
        elif groups.get(entry):
            users.extend(groups[entry])
        else:
            unresolved.append(entry)
    return Approvers(tuple(entries), source, tuple(dict.fromkeys(users)), tuple(unresolved))


async def group_members(client: BaseDBAsyncClient | None, handles: Iterable[str]) -> dict[str, list[str]]:
    handles = list(handles)
    if not handles:
        return {}
    rows = await UserGroup.filter(handle__in=handles).using_db(client)
    return {row.handle: list(row.members) for row in rows if row.group_id is not None}
