"""Milestones: created and updated from GitHub and the CLI, and the marks the notifiers leave on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from typing import Any

from tortoise.transactions import in_transaction

from core import outbox
from core.catalog import ensure_repository, lock_milestones, locked_row, milestone_named
from core.clock import utcnow
from core.db import column
from core.enums import MilestoneState
from core.models import (
    Approver,
    Defect,
    GateCheck,
    Milestone,
    MilestoneTest,
    Outbox,
    PullRequest,
    Signoff,
    SignoffRequest,
    Snapshot,
    Subscription,
)
from core.policy import DEFAULT_ENTRY, DEFAULT_SOURCE
from core.policy_file import load_policy
from core.services.changes import MilestoneChange, after_change
from core.services.policies import PolicyInvalid, adopt_policy, apply_milestone_policy, repository_policy
from core.wording import plural


class Keep(Enum):
    """A field left as it is, where None would mean "clear it"."""

    KEEP = "keep"


KEEP = Keep.KEEP


async def save_milestone(
    repository: str,
    name: str,
    *,
    target_date: date | None | Keep = KEEP,
    start_date: date | None | Keep = KEEP,
    tags: list[str] | None = None,
    description: str | None = None,
    state: MilestoneState | None = None,
    github_number: int | None = None,
    policy_text: str | bytes | None = None,
    policy_source: str = DEFAULT_SOURCE,
) -> tuple[Milestone, MilestoneChange]:
    """Create or update a milestone; found by GitHub number first, so a rename keeps history.

    `policy_text` is a `.github/milestones.yml` document: it becomes the repository's
    policy, from which the milestone takes its entry. An invalid one raises PolicyInvalid.
    """
    load = load_policy(policy_text, policy_source) if policy_text is not None else None
    if load is not None and not load.ok:
        raise PolicyInvalid(load)
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        # Read under its lock: a writer that held it (a launch completing the milestone, a
        # completion announced) has committed by then, and the whole row is saved below, so
        # what it wrote must not be written back as it was read before.
        milestone = None
        if github_number is not None:
            milestone = await locked_row(client, Milestone, repository=repo, github_number=github_number)
        if milestone is None:
            milestone = await locked_row(client, Milestone, repository=repo, name=name)
        created = milestone is None
        if milestone is None:
            milestone = Milestone(repository=repo, name=name)
        # Launches skip closed milestones, so one that reopens must catch up.
        reopening = milestone.state is MilestoneState.CLOSED and state is MilestoneState.OPEN
        milestone.name = name
        if target_date is not KEEP:
            milestone.target_date = target_date
        if start_date is not KEEP:
            milestone.start_date = start_date
        if tags:
            milestone.tags = list(dict.fromkeys([*(milestone.tags or []), *tags]))
        if description is not None:
            milestone.description = description
        if state is not None:
            milestone.state = state
        if github_number is not None:
            milestone.github_number = github_number
        await milestone.save(using_db=client)
        if created:
            await lock_milestones(client, [milestone.id])
        rebuild = [milestone.id] if reopening else []
        if load is not None and policy_text is not None:
            changes = await adopt_policy(client, repo, policy_text, load, rebuild=rebuild)
            change = next(change for change in changes if change.milestone.id == milestone.id)
        else:
            await apply_milestone_policy(client, repository_policy(repo), milestone, rebuild=reopening)
            change = await after_change(client, milestone, locked=True)
    return milestone, change


@dataclass(frozen=True)
class Clone:
    milestone: Milestone
    source: str
    # The policy entry (a glob, or the new name's own) that gives the clone its gate instead of
    # the copy; None when the copy is its gate.
    policy_entry: str | None
    # Whether its GitHub milestone is owed (the repository is connected to GitHub).
    github: bool


async def clone_milestone(
    repository: str | None,
    source_name: str,
    name: str,
    *,
    target_date: date | None = None,
    start_date: date | None = None,
) -> Clone:
    """A new milestone with the source's gate (its policy: plans, branches, required selectors,
    thresholds, defect limits, approvers, tags; and its approvers kept in Slack and its tags),
    none of its results, defects or sign-offs. With GitHub connected, its GitHub milestone is
    owed through the outbox. Refused (ValueError) when the name is taken."""
    async with in_transaction() as client:
        source = await milestone_named(client, repository, source_name)
        await source.fetch_related("repository", using_db=client)
        repo = source.repository
        if await Milestone.exists(repository=repo, name=name, using_db=client):
            raise ValueError(f"milestone {name} already exists in {repo.full_name}; choose another name")
        milestone = await Milestone.create(
            repository=repo,
            name=name,
            description=source.description,
            target_date=target_date,
            start_date=start_date,
            tags=list(source.tags or []),
            copied_policy=dict(source.policy or {}),
            using_db=client,
        )
        for approver in await Approver.filter(milestone=source, removed_at=None).using_db(client):
            await Approver.create(
                milestone=milestone,
                member=approver.member,
                added_by=approver.added_by,
                active_member=approver.member,
                using_db=client,
            )
        file = repository_policy(repo)
        entry = file.entry_for(name)
        await lock_milestones(client, [milestone.id])
        await apply_milestone_policy(client, file, milestone)
        await after_change(client, milestone)
        # Connected: the repository's app installation, or a source that has a GitHub twin.
        github = repo.installation_id is not None or source.github_number is not None
        if github:
            await outbox.mark(client, outbox.GITHUB_MILESTONE_CREATE, [milestone.id])
    return Clone(milestone, source.name, entry if entry not in (None, DEFAULT_ENTRY) else None, github)


async def unlink_github_milestone(repository: str, number: int) -> Milestone | None:
    """The GitHub milestone was deleted: ours is closed, and keeps its history."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        milestone = await Milestone.get_or_none(repository=repo, github_number=number, using_db=client)
        if milestone is None:
            return None
        milestone.github_number = None
        milestone.state = MilestoneState.CLOSED
        # Closed for good: no longer one that a regression would reopen.
        milestone.closed_on_complete = False
        await milestone.save(
            using_db=client, update_fields=["github_number", "state", "closed_on_complete", "updated_at"]
        )
        await lock_milestones(client, [milestone.id])
        await after_change(client, milestone)
    return milestone


async def record_github_twin(milestone_id: int, number: int) -> None:
    """The GitHub milestone made for ours (a clone's) is its twin from now on."""
    await Milestone.filter(id=milestone_id, github_number=None).update(github_number=number)


async def milestone_by_id(milestone_id: int) -> Milestone | None:
    return await Milestone.get_or_none(id=milestone_id).prefetch_related("repository")


async def completion_announced(milestone_id: int, complete: bool) -> None:
    await Milestone.filter(id=milestone_id).update(announced_complete=complete)


async def record_alerted(milestone_id: int, state: dict[str, Any]) -> None:
    await Milestone.filter(id=milestone_id).update(alerted=state)


async def mark_calendar_alerts(today: date | None = None) -> None:
    """Due in a few days, or overdue, is news without any event: open milestones near or past
    their date are looked at again (the alerts say each once)."""
    # A day more than the alerts' three: in a zone ahead of UTC, "today" is already tomorrow.
    today = today or utcnow().date()
    ids = await column(
        Milestone.filter(state=MilestoneState.OPEN, completed_at=None, target_date__lte=today + timedelta(days=4)), "id"
    )
    async with in_transaction() as client:
        await outbox.mark(client, outbox.MILESTONE_ALERTS, ids)


async def github_milestone_closed(milestone_id: int, closed: bool) -> None:
    """Whether its GitHub milestone is closed because it completed (close_on_complete)."""
    await Milestone.filter(id=milestone_id).update(closed_on_complete=closed)


@dataclass(frozen=True)
class MilestoneRecord:
    """What is kept of a milestone: what `milestone delete` would take with it."""

    test_states: int
    signoffs: int
    signoff_requests: int
    snapshots: int
    subscriptions: int
    gate_checks: int
    defects: int
    pull_requests: int

    @property
    def history(self) -> bool:
        """Anything a person would miss; snapshots alone come with every milestone."""
        return any(
            (
                self.test_states,
                self.signoffs,
                self.signoff_requests,
                self.subscriptions,
                self.gate_checks,
                self.defects,
                self.pull_requests,
            )
        )

    def described(self) -> str:
        parts = [
            plural(self.test_states, "test result") if self.test_states else "",
            plural(self.signoffs, "sign-off decision") if self.signoffs else "",
            plural(self.signoff_requests, "sign-off request") if self.signoff_requests else "",
            plural(self.snapshots, "daily snapshot") if self.snapshots else "",
            plural(self.subscriptions, "digest subscription") if self.subscriptions else "",
            plural(self.gate_checks, "pull request check") if self.gate_checks else "",
            f"the link to {plural(self.defects, 'defect')}" if self.defects else "",
            f"the link to {plural(self.pull_requests, 'pull request')}" if self.pull_requests else "",
        ]
        return ", ".join(part for part in parts if part) or "nothing else"


async def milestone_record(milestone: Milestone) -> MilestoneRecord:
    return MilestoneRecord(
        test_states=await MilestoneTest.filter(milestone=milestone, latest_launch_id__isnull=False).count(),
        signoffs=await Signoff.filter(milestone=milestone).count(),
        signoff_requests=await SignoffRequest.filter(milestone=milestone).count(),
        snapshots=await Snapshot.filter(milestone=milestone).count(),
        subscriptions=await Subscription.filter(milestone=milestone).count(),
        gate_checks=await GateCheck.filter(milestone=milestone).count(),
        defects=await Defect.filter(milestone=milestone).count(),
        pull_requests=await PullRequest.filter(milestone=milestone).count(),
    )


async def edit_milestone(
    repository: str, name: str, *, state: MilestoneState | None = None, new_name: str | None = None
) -> tuple[Milestone, MilestoneChange]:
    """Close, reopen or rename a milestone here; its GitHub milestone follows (through the outbox)."""
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, name)
        await lock_milestones(client, [milestone.id])
        await milestone.refresh_from_db(using_db=client)
        if new_name is not None and new_name != milestone.name:
            taken = (
                await Milestone.filter(repository_id=milestone.repository_id, name=new_name).using_db(client).exists()
            )
            if taken:
                raise ValueError(f"{repository} already has a milestone {new_name}")
            milestone.name = new_name
        reopening = milestone.state is MilestoneState.CLOSED and state is MilestoneState.OPEN
        if state is not None:
            milestone.state = state
            if state is MilestoneState.CLOSED:
                # Closed by a person: not one that a regression would reopen on GitHub.
                milestone.closed_on_complete = False
        await milestone.save(using_db=client)
        await milestone.fetch_related("repository", using_db=client)
        await apply_milestone_policy(client, repository_policy(milestone.repository), milestone, rebuild=reopening)
        change = await after_change(client, milestone)
        if milestone.github_number is not None:
            await outbox.mark(client, outbox.GITHUB_MILESTONE_EDIT, [milestone.id])
    return milestone, change


async def delete_milestone(repository: str, name: str, *, force: bool) -> MilestoneRecord:
    """Delete a milestone; one with history (MilestoneRecord.history) only when forced.

    Raises HasHistory, saying what would go, when not forced. Its GitHub milestone,
    defects and pull requests stay: only this service's record of the milestone goes."""
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, name)
        await lock_milestones(client, [milestone.id])
        record = await milestone_record(milestone)
        if record.history and not force:
            raise HasHistory(milestone.name, record)
        await Outbox.filter(topic__in=MILESTONE_TOPICS, subject=milestone.id).using_db(client).delete()
        # Unchecked by the database (core.models), so not deleted with the milestone by it.
        await MilestoneTest.filter(milestone_id=milestone.id).using_db(client).delete()
        await milestone.delete(using_db=client)
    return record


class HasHistory(ValueError):
    def __init__(self, name: str, record: MilestoneRecord):
        self.record = record
        super().__init__(
            f"{name} has history ({record.described()}); `--force` deletes it with all of that "
            "(its GitHub milestone, defects and pull requests stay)"
        )


# Outbox work about a milestone, which goes with it.
MILESTONE_TOPICS = (
    outbox.MILESTONE_COMPLETION,
    outbox.MILESTONE_ALERTS,
    outbox.GITHUB_MILESTONE_STATE,
    outbox.GITHUB_MILESTONE_EDIT,
)
