"""Who signs off: approvers kept in Slack, and the members of Slack user groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.approvers import Approvers, approvers_of, check_entry, normalise
from core.catalog import lock_milestones, milestone_named, milestone_policy
from core.clock import utcnow
from core.db import column
from core.enums import MilestoneState
from core.models import Approver, Milestone, UserGroup
from core.services.changes import MilestoneChange, after_change
from core.services.signoffs import SignoffRefused


async def milestone_approvers(repository: str, milestone_name: str) -> tuple[Milestone, Approvers]:
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        return milestone, await approvers_of(client, milestone.id, milestone_policy(milestone))


def check_approver_edit(repository: str, milestone_name: str, current: Approvers, *, by: str, by_admin: bool) -> None:
    """Raises SignoffRefused unless `by` may change these approvers: kept in Slack (not in the
    policy file), and `by` one of them or a workspace admin."""
    if current.source == "policy":
        raise SignoffRefused(
            f"{milestone_name}'s approvers are set in {repository}'s .github/milestones.yml; change them there"
        )
    if not by_admin and by not in current:
        raise SignoffRefused(f"only {milestone_name}'s approvers and workspace admins can change its approvers")


async def edit_approvers(
    repository: str,
    milestone_name: str,
    *,
    by: str,
    by_admin: bool,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
) -> Approvers:
    """Add or remove approvers kept in Slack; allowed to the milestone's approvers and workspace admins.

    A policy file that lists approvers is where they are kept: then this refuses."""
    add = [check_entry(entry) for entry in add]
    remove = [check_entry(entry) for entry in remove]
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        policy = milestone_policy(milestone)
        current = await approvers_of(client, milestone.id, policy)
        check_approver_edit(repository, milestone.name, current, by=by, by_admin=by_admin)
        now = utcnow()
        for member in remove:
            await (
                Approver.filter(milestone=milestone, active_member=member)
                .using_db(client)
                .update(active_member=None, removed_by=by, removed_at=now)
            )
        for member in add:
            if not await Approver.exists(milestone=milestone, active_member=member, using_db=client):
                await Approver.create(
                    using_db=client, milestone=milestone, member=member, added_by=by, active_member=member
                )
        await after_change(client, milestone)
        return await approvers_of(client, milestone.id, policy)


async def store_user_groups(groups: Mapping[str, tuple[str | None, Sequence[str]]]) -> list[MilestoneChange]:
    """Members of user groups as just read from Slack, or of GitHub teams as just read from GitHub
    (handle -> (group id or None when there is no such group, member ids)); the gates of open milestones whose approvers changed are evaluated again."""
    try:
        return await _store_user_groups(groups)
    except IntegrityError:
        # Two clicks stored a group seen for the first time at once: the second finds it now.
        return await _store_user_groups(groups)


async def _store_user_groups(groups: Mapping[str, tuple[str | None, Sequence[str]]]) -> list[MilestoneChange]:
    now = utcnow()
    changed = set()
    async with in_transaction() as client:
        # In one order, so that two writers never wait on each other in a cycle.
        for handle, (group_id, members) in sorted((normalise(handle), group) for handle, group in groups.items()):
            row = await UserGroup.get_or_none(handle=handle, using_db=client)
            if row is None:
                await UserGroup.create(
                    using_db=client, handle=handle, group_id=group_id, members=list(members), refreshed_at=now
                )
                changed.add(handle)
            elif (row.group_id, row.members) != (group_id, list(members)):
                changed.add(handle)
                await (
                    UserGroup.filter(id=row.id)
                    .using_db(client)
                    .update(group_id=group_id, members=list(members), refreshed_at=now)
                )
            else:
                await UserGroup.filter(id=row.id).using_db(client).update(refreshed_at=now)
        if not changed:
            return []
        affected = []
        for milestone in await Milestone.filter(Q(state=MilestoneState.OPEN) | Q(closed_on_complete=True)).using_db(
            client
        ):
            entries = await approvers_of(client, milestone.id, milestone_policy(milestone))
            if changed & {*entries.groups, *entries.teams}:
                affected.append(milestone)
        await lock_milestones(client, [milestone.id for milestone in affected])
        return [await after_change(client, milestone) for milestone in affected]


async def stale_user_groups(handles: Sequence[str], max_age: timedelta) -> list[str]:
    """Of these user groups, those not read from Slack within `max_age`."""
    fresh = set(
        await column(UserGroup.filter(handle__in=list(handles), refreshed_at__gte=utcnow() - max_age), "handle")
    )
    return [handle for handle in handles if handle not in fresh]
