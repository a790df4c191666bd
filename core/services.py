"""The engine's one entry point: the CLI, the GitHub webhooks and the Slack bot call these.

Every write runs in one transaction and ends with `_after_change`, which evaluates
the gate afresh, dismisses approvals that went stale, marks completion, and
appends a snapshot when the metrics moved. Callers get back what changed, so they
can tell people (checks, Slack) without recomputing anything.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum
from typing import Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core import outbox, state
from core.approvers import Approvers, approvers_of, as_handle, check_entry
from core.catalog import (
    NotFound,
    check_repository_name,
    ensure_plan,
    ensure_repository,
    lock_milestones,
    milestone_policy,
    repository_named,
    sync_milestone_plans,
)
from core.clock import utcnow
from core.enums import Decision, DefectState, GateStatus, MilestoneState
from core.facts import load_facts
from core.gate import MilestoneFacts, Verdict, counted_approvals, evaluate
from core.ingest import LaunchSource, store_launch
from core.junit import ParsedReport
from core.models import (
    Approver,
    Defect,
    Milestone,
    PullRequest,
    Repository,
    Signoff,
    SignoffRequest,
    Snapshot,
    UserGroup,
)
from core.policy import (
    DEFAULT_ENTRY,
    DEFAULT_SOURCE,
    DefectsConfig,
    MilestonePolicy,
    PolicyFile,
    PolicyLoad,
    load_policy,
)
from core.pull_requests import OPEN, mark_showing
from core.selectors import GLOB_CHARS


@dataclass
class MilestoneChange:
    """What one write did to one milestone's gate."""

    milestone: Milestone
    verdict: Verdict
    previous_status: GateStatus | None
    dismissed: list[Signoff] = field(default_factory=list)
    completed: bool = False
    reopened: bool = False

    @property
    def status_changed(self) -> bool:
        return self.previous_status is not self.verdict.status


@dataclass
class LaunchOutcome:
    launch_id: int
    created: bool
    superseded: bool
    counts: dict[str, int]
    changes: list[MilestoneChange] = field(default_factory=list)


@dataclass(frozen=True)
class IssueFacts:
    """A GitHub issue as the defect tracker sees it."""

    number: int
    title: str
    labels: list[str]
    state: Literal["open", "closed"]
    state_reason: str | None = None
    url: str | None = None
    milestone_title: str | None = None
    milestone_number: int | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = None
    closed_at: datetime | None = None
    deleted: bool = False


@dataclass
class DefectOutcome:
    applied: bool
    defect: Defect | None
    changes: list[MilestoneChange] = field(default_factory=list)


@dataclass
class DecisionOutcome:
    recorded: bool
    entry: Signoff
    change: MilestoneChange | None = None


@dataclass(frozen=True)
class MilestoneSummary:
    repository: str
    name: str
    status: GateStatus
    overdue: bool
    target_date: date | None
    days_left: int | None
    state: MilestoneState
    pass_rate: float | None
    open_blocking: int
    approvers: list[str] = field(default_factory=list)


# Milestones -----------------------------------------------------------------


class Keep(Enum):
    """A field left as it is, where None would mean "clear it"."""

    KEEP = "keep"


KEEP = Keep.KEEP


async def save_milestone(
    repository: str,
    name: str,
    *,
    target_date: date | None | Keep = KEEP,
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
        milestone = None
        if github_number is not None:
            milestone = await Milestone.get_or_none(repository=repo, github_number=github_number, using_db=client)
        if milestone is None:
            milestone = await Milestone.get_or_none(repository=repo, name=name, using_db=client)
        if milestone is None:
            milestone = Milestone(repository=repo, name=name)
        # Launches skip closed milestones, so one that reopens must catch up.
        reopening = milestone.state is MilestoneState.CLOSED and state is MilestoneState.OPEN
        milestone.name = name
        if target_date is not KEEP:
            milestone.target_date = target_date
        if description is not None:
            milestone.description = description
        if state is not None:
            milestone.state = state
        if github_number is not None:
            milestone.github_number = github_number
        await milestone.save(using_db=client)
        await lock_milestones(client, [milestone.id])
        rebuild = [milestone.id] if reopening else []
        if load is not None and policy_text is not None:
            changes = await _adopt_policy(client, repo, policy_text, load, rebuild=rebuild)
            change = next(change for change in changes if change.milestone.id == milestone.id)
        else:
            await _apply_policy(client, repository_policy(repo), milestone, rebuild=reopening)
            change = await _after_change(client, milestone)
    return milestone, change


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
        await _after_change(client, milestone)
    return milestone


class PolicyInvalid(ValueError):
    def __init__(self, load: PolicyLoad):
        self.load = load
        super().__init__("\n".join(str(error) for error in load.errors))


async def apply_policy_file(
    repository: str, text: str | bytes, source: str = DEFAULT_SOURCE
) -> tuple[PolicyLoad, list[MilestoneChange]]:
    """Validate and apply a policy file; an invalid one is recorded and the last valid one stays."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        load = load_policy(text, source)
        if not load.ok:
            repo.policy_errors = [vars(error) for error in load.errors]
            await repo.save(using_db=client, update_fields=["policy_errors"])
            return load, []
        return load, await _adopt_policy(client, repo, text, load)


async def _adopt_policy(
    client: BaseDBAsyncClient, repo: Repository, text: str | bytes, load: PolicyLoad, *, rebuild: Collection[int] = ()
) -> list[MilestoneChange]:
    """Make a valid policy the repository's: plans, milestones, defect classes, verdicts."""
    assert load.policy is not None
    policy = load.policy
    repo.policy_text = text.decode() if isinstance(text, bytes) else text
    repo.policy_errors = None
    repo.policy_updated_at = utcnow()
    await repo.save(using_db=client, update_fields=["policy_text", "policy_errors", "policy_updated_at"])
    for plan_name, plan_config in policy.plans.items():
        plan = await ensure_plan(repo, plan_name, client)
        plan.workflow = plan_config.workflow
        plan.artifacts = plan_config.artifacts
        await plan.save(using_db=client, update_fields=["workflow", "artifacts"])
    for milestone_name in policy.milestones:
        if milestone_name != DEFAULT_ENTRY and not GLOB_CHARS & set(milestone_name):
            await Milestone.get_or_create(repository=repo, name=milestone_name, using_db=client)
    await _classify_defects(client, repo, policy.defects)
    milestones = await Milestone.filter(repository=repo).using_db(client)
    await lock_milestones(client, [milestone.id for milestone in milestones])
    changes = []
    for milestone in milestones:
        await _apply_policy(client, policy, milestone, rebuild=milestone.id in rebuild)
        changes.append(await _after_change(client, milestone))
    return changes


async def _classify_defects(
    client: BaseDBAsyncClient, repo: Repository, config: DefectsConfig, *, relabel: dict[str, str | None] | None = None
) -> None:
    """Classify every issue of the repository again; `relabel` renames (or, to None, drops) labels first."""
    for defect in await Defect.filter(repository=repo).using_db(client):
        if relabel:
            renamed = (relabel.get(label.lower(), label) for label in defect.labels)
            defect.labels = [label for label in renamed if label is not None]
        classify(defect, config, repo.label_aliases)
        await defect.save(using_db=client, update_fields=["labels", "severity", "state", "counts"])


def repository_policy(repo: Repository) -> PolicyFile:
    if not repo.policy_text:
        return PolicyFile()
    load = load_policy(repo.policy_text)
    assert load.policy is not None, "only valid policy files are stored"
    return load.policy


async def _apply_policy(
    client: BaseDBAsyncClient, repository_file: PolicyFile, milestone: Milestone, *, rebuild: bool = False
) -> None:
    """Give the milestone its entry of the repository policy; rebuild state if scope moved."""
    policy = repository_file.policy_for(milestone.name)
    before = milestone_policy(milestone) if milestone.policy else None
    milestone.policy = policy.model_dump(mode="json")
    await milestone.save(using_db=client, update_fields=["policy", "updated_at"])
    plans_moved = await sync_milestone_plans(milestone, policy, client)
    if rebuild or plans_moved or before is None or before.branches != policy.branches:
        await state.rebuild(client, milestone, policy)
    elif before.required != policy.required:
        await state.refresh_required(client, milestone, policy, everything=True)


# Launches -------------------------------------------------------------------


async def record_launch(report: ParsedReport, source: LaunchSource) -> LaunchOutcome:
    """Store a launch whole or not at all; the same source and attempt twice changes nothing."""
    check_repository_name(source.repository)
    async with in_transaction() as client:
        stored = await store_launch(client, report, source)
        at = stored.launch.finished_at
        changes = [await _after_change(client, milestone, at) for milestone in stored.milestones]
    launch = stored.launch
    counts = {
        "files": launch.files,
        "tests": launch.tests,
        "passed": launch.passed,
        "failed": launch.failed,
        "errors": launch.errors,
        "skipped": launch.skipped,
        "flaky": launch.flaky,
    }
    return LaunchOutcome(launch.id, stored.created, launch.superseded, counts, changes)


# Defects --------------------------------------------------------------------


async def upsert_defect(repository: str, issue: IssueFacts) -> DefectOutcome:
    """Apply an issue's state; an event older than the stored one is ignored."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        policy = repository_policy(repo)
        # Every issue seen is kept, defect or not, so that its newest update time guards
        # against an older event (say, before its bug label was removed) arriving late.
        # Locked, so that an older event read before a newer one commits cannot win after it.
        defect = await Defect.filter(repository=repo, number=issue.number).select_for_update().using_db(client).first()
        if defect is not None and _older(issue.updated_at, defect.source_updated_at):
            return DefectOutcome(False, defect)
        defect = defect or Defect(repository=repo, number=issue.number)
        before = defect.milestone_id if defect.id else None  # type: ignore[attr-defined]
        milestone = await _github_milestone(client, repo, policy, issue.milestone_number, issue.milestone_title)
        await lock_milestones(client, [before, milestone.id if milestone else None])
        _apply_issue(defect, issue, policy.defects, milestone, repo.label_aliases)
        await defect.save(using_db=client)
        touched = {before, defect.milestone_id} - {None}  # type: ignore[attr-defined]
        changes = [
            await _after_change(client, m, issue.updated_at)
            for m in await Milestone.filter(id__in=touched).using_db(client)
        ]
    return DefectOutcome(True, defect, changes)


def _older(incoming: datetime | None, stored: datetime | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


async def _github_milestone(
    client: BaseDBAsyncClient, repo: Repository, policy: PolicyFile, number: int | None, title: str | None
) -> Milestone | None:
    """Our milestone for the GitHub milestone an issue or PR carries; made if not seen yet."""
    if number is not None:
        found = await Milestone.get_or_none(repository=repo, github_number=number, using_db=client)
        if found is not None:
            return found
    if not title:
        return None
    found = await Milestone.get_or_none(repository=repo, name=title, using_db=client)
    if found is None:
        found = await Milestone.create(repository=repo, name=title, github_number=number, using_db=client)
        await _apply_policy(client, policy, found)
    return found


def _apply_issue(
    defect: Defect, issue: IssueFacts, config: DefectsConfig, milestone: Milestone | None, aliases: dict[str, list[str]]
) -> None:
    defect.title = issue.title
    defect.url = issue.url
    defect.labels = list(issue.labels)
    defect.milestone = milestone
    defect.source_updated_at = issue.updated_at or defect.source_updated_at
    defect.opened_at = issue.created_at or defect.opened_at
    defect.issue_state = issue.state
    defect.state_reason = issue.state_reason
    defect.deleted = issue.deleted
    if issue.state == "open":
        defect.resolved_at = None
    else:
        defect.resolved_at = issue.closed_at or defect.resolved_at or utcnow()
    classify(defect, config, aliases)


def classify(defect: Defect, config: DefectsConfig, aliases: dict[str, list[str]] | None = None) -> None:
    """Severity, state and whether it counts, from the issue's stored facts and the policy.

    `aliases` maps a renamed label to its former names: a policy written before the
    rename still recognises it.
    """
    labels = list(defect.labels)
    for label in defect.labels:
        labels.extend((aliases or {}).get(label.lower(), ()))
    defect.severity = config.severity_for(labels)
    if defect.issue_state == "open":
        defect.state = DefectState.OPEN
    else:
        verified = any(label.strip().lower() == config.verify_label.lower() for label in labels)
        defect.state = DefectState.VERIFIED if verified else DefectState.RESOLVED
    not_planned = defect.issue_state == "closed" and defect.state_reason == "not_planned"
    defect.counts = config.is_defect(labels) and not not_planned and not defect.deleted


async def rename_label(repository: str, old: str, new: str) -> list[MilestoneChange]:
    """A label renamed on GitHub: issues carry the new name, the policy may still say the old one."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        aliases = dict(repo.label_aliases)
        former = [old, *aliases.pop(old.lower(), [])]
        aliases[new.lower()] = [name for name in dict.fromkeys(former) if name.lower() != new.lower()]
        repo.label_aliases = {name: formers for name, formers in aliases.items() if formers}
        await repo.save(using_db=client, update_fields=["label_aliases"])
        return await _relabel(client, repo, {old.lower(): new})


async def delete_label(repository: str, name: str) -> list[MilestoneChange]:
    """A label deleted on GitHub leaves every issue at once, without an `unlabeled` event for each."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        if name.lower() in repo.label_aliases:
            repo.label_aliases = {key: value for key, value in repo.label_aliases.items() if key != name.lower()}
            await repo.save(using_db=client, update_fields=["label_aliases"])
        return await _relabel(client, repo, {name.lower(): None})


async def _relabel(
    client: BaseDBAsyncClient, repo: Repository, relabel: dict[str, str | None]
) -> list[MilestoneChange]:
    milestones = await Milestone.filter(repository=repo).using_db(client)
    await lock_milestones(client, [milestone.id for milestone in milestones])
    await _classify_defects(client, repo, repository_policy(repo).defects, relabel=relabel)
    return [await _after_change(client, milestone) for milestone in milestones]


# Pull requests --------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestFacts:
    number: int
    head_sha: str
    base_ref: str
    title: str = ""
    url: str | None = None
    state: Literal["open", "closed"] = "open"
    draft: bool = False
    milestone_number: int | None = None
    milestone_title: str | None = None
    updated_at: datetime | None = None


async def record_pull_request(repository: str, facts: PullRequestFacts, *, refresh: bool = False) -> PullRequest | None:
    """Keep a pull request's head, base and GitHub milestone; None when the event is older than what is stored.

    An open pull request whose head, base or milestone moved (or with `refresh`) is
    due new checks.
    """
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        pull = (
            await PullRequest.filter(repository=repo, number=facts.number).select_for_update().using_db(client).first()
        )
        if pull is not None and _older(facts.updated_at, pull.source_updated_at):
            return None
        pull = pull or PullRequest(repository=repo, number=facts.number)
        before = (pull.head_sha, pull.base_ref, pull.milestone_id) if pull.id else None  # type: ignore[attr-defined]
        pull.milestone = await _github_milestone(
            client, repo, repository_policy(repo), facts.milestone_number, facts.milestone_title
        )
        if pull.id and pull.base_ref != facts.base_ref:
            pull.files_checked_sha = None  # against another base, other files differ
        pull.title = facts.title
        pull.url = facts.url
        pull.state = facts.state
        pull.draft = facts.draft
        pull.head_sha = facts.head_sha
        pull.base_ref = facts.base_ref
        pull.source_updated_at = facts.updated_at or pull.source_updated_at
        await pull.save(using_db=client)
        moved = before != (pull.head_sha, pull.base_ref, pull.milestone_id)  # type: ignore[attr-defined]
        if pull.state == OPEN and (refresh or moved):
            await outbox.mark(client, outbox.PULL_REQUEST_CHECKS, [pull.id])
    return pull


# Sign-off -------------------------------------------------------------------


class SignoffRefused(Exception):
    """A decision or edit the rules do not allow; the message says why to whoever tried."""


class NotAnApprover(SignoffRefused):
    def __init__(self, milestone: str, approvers: Approvers):
        self.milestone = milestone
        self.approvers = approvers
        super().__init__(f"you are not an approver of {milestone}")


async def record_decision(
    repository: str,
    milestone_name: str,
    user_id: str,
    decision: Literal[Decision.APPROVE, Decision.REJECT],
    *,
    comment: str = "",
    user_name: str | None = None,
) -> DecisionOutcome:
    """Record an approver's approval or rejection; the same decision twice is one record.

    Raises NotAnApprover for anyone else, and SignoffRefused for an approval the policy
    does not allow yet (criteria 1-3 not met) or at all (the requester's own)."""
    if decision not in (Decision.APPROVE, Decision.REJECT):
        raise ValueError("a decision is approve or reject")
    if decision is Decision.REJECT and not comment.strip():
        raise ValueError("a rejection needs a reason")
    try:
        async with in_transaction() as client:
            milestone = await _milestone(client, repository, milestone_name)
            await lock_milestones(client, [milestone.id])
            policy = milestone_policy(milestone)
            facts = await load_facts(client, milestone)
            if user_id not in facts.approvers:
                raise NotAnApprover(milestone.name, await approvers_of(client, milestone.id, policy))
            standing = await Signoff.get_or_none(milestone=milestone, active_user=user_id, using_db=client)
            if standing is not None and standing.decision is decision:
                return DecisionOutcome(False, standing)
            verdict = evaluate(facts, utcnow())
            request = await SignoffRequest.get_or_none(live_for=milestone.id, using_db=client)
            requested_by = request.requested_by if request else None
            if decision is Decision.APPROVE:
                _check_approval_allowed(milestone.name, policy, verdict, user_id, requested_by)
            if standing is not None:
                await _end(client, standing, Decision.WITHDRAW, user_id, "changed their decision")
            entry = await Signoff.create(
                using_db=client,
                milestone=milestone,
                user_id=user_id,
                user_name=user_name,
                decision=decision,
                comment=comment.strip(),
                given_while_green=verdict.gate_green,
                requested_by=requested_by,
                active_user=user_id,
            )
            change = await _after_change(client, milestone)
            return DecisionOutcome(True, entry, change)
    except IntegrityError:
        # A concurrent click by the same person won the unique (milestone, active_user).
        async with in_transaction() as client:
            milestone = await _milestone(client, repository, milestone_name)
            standing = await Signoff.get(milestone=milestone, active_user=user_id, using_db=client)
            return DecisionOutcome(False, standing)


def _check_approval_allowed(
    name: str, policy: MilestonePolicy, verdict: Verdict, user_id: str, requested_by: str | None
) -> None:
    if not verdict.gate_green and not policy.signoff.allow_early_signoff:
        raise SignoffRefused(
            f"{name} cannot be approved until its tests, defects and coverage are met ({verdict.what_blocks_signoff})"
        )
    if policy.signoff.prevent_self_approval and requested_by == user_id:
        raise SignoffRefused(f"you requested this sign-off, and {name}'s policy does not let the requester approve it")


async def withdraw_decision(repository: str, milestone_name: str, user_id: str) -> DecisionOutcome | None:
    """End the person's standing decision; None when they have none."""
    return await _end_standing(repository, milestone_name, user_id, Decision.WITHDRAW, "withdrawn")


async def dismiss_decision(
    repository: str, milestone_name: str, user_id: str, *, by: str, by_admin: bool
) -> DecisionOutcome | None:
    """A workspace admin ends someone's standing decision: a rejection by someone who left
    would otherwise block for good. None when they have none."""
    if not by_admin:
        raise SignoffRefused("only workspace admins can dismiss someone else's decision")
    return await _end_standing(repository, milestone_name, user_id, Decision.DISMISS, f"dismissed by {by}")


async def _end_standing(
    repository: str, milestone_name: str, user_id: str, how: Decision, note: str
) -> DecisionOutcome | None:
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        standing = await Signoff.get_or_none(milestone=milestone, active_user=user_id, using_db=client)
        if standing is None:
            return None
        entry = await _end(client, standing, how, user_id, note)
        return DecisionOutcome(True, entry, await _after_change(client, milestone))


async def milestone_approvers(repository: str, milestone_name: str) -> tuple[Milestone, Approvers]:
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
        return milestone, await approvers_of(client, milestone.id, milestone_policy(milestone))


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
        milestone = await _milestone(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        policy = milestone_policy(milestone)
        current = await approvers_of(client, milestone.id, policy)
        if current.source == "policy":
            raise SignoffRefused(
                f"{milestone.name}'s approvers are set in {repository}'s .github/milestones.yml; change them there"
            )
        if not by_admin and by not in current:
            raise SignoffRefused(f"only {milestone.name}'s approvers and workspace admins can change its approvers")
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
        await _after_change(client, milestone)
        return await approvers_of(client, milestone.id, policy)


async def store_user_groups(groups: Mapping[str, tuple[str | None, Sequence[str]]]) -> list[MilestoneChange]:
    """Members of user groups as just read from Slack (handle -> (group id or None when there is
    no such group, member ids)); the gates of open milestones whose approvers changed are evaluated again."""
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
        for handle, (group_id, members) in sorted((as_handle(handle), group) for handle, group in groups.items()):
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
            if changed & set(entries.groups):
                affected.append(milestone)
        await lock_milestones(client, [milestone.id for milestone in affected])
        return [await _after_change(client, milestone) for milestone in affected]


async def stale_user_groups(handles: Sequence[str], max_age: timedelta) -> list[str]:
    """Of these user groups, those not read from Slack within `max_age`."""
    fresh = set(
        await UserGroup.filter(handle__in=list(handles), refreshed_at__gte=utcnow() - max_age).values_list(
            "handle", flat=True
        )
    )
    return [handle for handle in handles if handle not in fresh]


@dataclass(frozen=True)
class RequestAt:
    """The sign-off request a message shows, and the one that replaced it, if any."""

    request: SignoffRequest
    repository: str
    milestone: str
    live: bool
    replacement: SignoffRequest | None


async def open_signoff_request(
    repository: str,
    milestone_name: str,
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    requested_by: str,
    requested_at: datetime | None = None,
    shown_digest: str | None = None,
) -> tuple[SignoffRequest, SignoffRequest | None]:
    """The request just posted becomes the milestone's live one; the one it replaces (returned
    second) is due an update."""
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        old = await SignoffRequest.get_or_none(live_for=milestone.id, using_db=client)
        if old is not None:
            old.live_for = None
            await old.save(using_db=client, update_fields=["live_for"])
        request = await SignoffRequest.create(
            using_db=client,
            milestone=milestone,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=message_ts,
            requested_by=requested_by,
            live_for=milestone.id,
            shown_digest=shown_digest,
            created_at=requested_at or utcnow(),
        )
        if old is not None:
            old.replaced_by = request
            await old.save(using_db=client, update_fields=["replaced_by_id"])
        # The new one too: a decision between its rendering and now marked only the old one.
        await outbox.mark(client, outbox.SIGNOFF_REQUEST, [request.id] + ([old.id] if old else []))
    return request, old


async def signoff_request_at(channel_id: str, message_ts: str) -> RequestAt | None:
    """The request a message shows: Slack's container of a click names the channel and ts."""
    return await _request_where(channel_id=channel_id, message_ts=message_ts)


async def signoff_request(request_id: int) -> RequestAt | None:
    return await _request_where(id=request_id)


async def _request_where(**where: object) -> RequestAt | None:
    request = await SignoffRequest.get_or_none(**where).prefetch_related("milestone__repository", "replaced_by")
    if request is None:
        return None
    milestone = request.milestone
    return RequestAt(
        request, milestone.repository.full_name, milestone.name, request.live_for is not None, request.replaced_by
    )


async def live_request(milestone_id: int) -> SignoffRequest | None:
    return await SignoffRequest.get_or_none(live_for=milestone_id)


async def signoff_entry(entry_id: int) -> tuple[Signoff, str, str] | None:
    """A trail entry with its milestone's repository and name."""
    entry = await Signoff.get_or_none(id=entry_id).prefetch_related("milestone__repository")
    if entry is None:
        return None
    return entry, entry.milestone.repository.full_name, entry.milestone.name


async def milestone_by_id(milestone_id: int) -> Milestone | None:
    return await Milestone.get_or_none(id=milestone_id).prefetch_related("repository")


async def completion_announced(milestone_id: int, complete: bool) -> None:
    await Milestone.filter(id=milestone_id).update(announced_complete=complete)


async def record_alerted(milestone_id: int, state: dict) -> None:
    await Milestone.filter(id=milestone_id).update(alerted=state)


async def mark_calendar_alerts(today: date | None = None) -> None:
    """Due in a few days, or overdue, is news without any event: open milestones near or past
    their date are looked at again (the alerts say each once)."""
    today = today or utcnow().date()
    ids = await Milestone.filter(
        state=MilestoneState.OPEN, completed_at=None, target_date__lte=today + timedelta(days=3)
    ).values_list("id", flat=True)
    async with in_transaction() as client:
        await outbox.mark(client, outbox.MILESTONE_ALERTS, ids)


async def github_milestone_closed(milestone_id: int, closed: bool) -> None:
    """Whether its GitHub milestone is closed because it completed (close_on_complete)."""
    await Milestone.filter(id=milestone_id).update(closed_on_complete=closed)


@dataclass(frozen=True)
class SignoffState:
    """Everything a sign-off message shows: the gate, who signs off, and the trail."""

    reading: MilestoneReading
    approvers: Approvers
    trail: list[Signoff]
    completed_at: datetime | None
    completed_with: list[dict]


async def signoff_state(repository: str, milestone_name: str, now: datetime | None = None) -> SignoffState:
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
        facts = await load_facts(client, milestone)
        approvers = await approvers_of(client, milestone.id, facts.policy)
        trail = await Signoff.filter(milestone=milestone).order_by("created_at", "id").using_db(client)
    reading = MilestoneReading(
        repository, milestone.name, milestone.description, facts, evaluate(facts, now or utcnow()), milestone.id
    )
    return SignoffState(reading, approvers, trail, milestone.completed_at, milestone.completed_with)


async def request_shown(request_id: int, digest: str) -> None:
    await SignoffRequest.filter(id=request_id).update(shown_digest=digest)


async def _end(client: BaseDBAsyncClient, standing: Signoff, how: Decision, user_id: str, note: str) -> Signoff:
    standing.valid = False
    standing.active_user = None
    await standing.save(using_db=client, update_fields=["valid", "active_user"])
    return await Signoff.create(
        using_db=client,
        milestone_id=standing.milestone_id,  # type: ignore[attr-defined]
        user_id=user_id,
        decision=how,
        comment=note,
        ends=standing,
        valid=False,
    )


# Reading --------------------------------------------------------------------


async def get_verdict(repository: str | None, milestone_name: str, now: datetime | None = None) -> Verdict:
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
    return await milestone_verdict(milestone, now)


async def find_milestone(repository: str | None, milestone_name: str) -> Milestone:
    """The milestone with its repository; NotFound when it is not one, or is ambiguous."""
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, milestone_name)
        await milestone.fetch_related("repository", using_db=client)
    return milestone


async def milestone_verdict(milestone: Milestone, now: datetime | None = None) -> Verdict:
    async with in_transaction() as client:
        return evaluate(await load_facts(client, milestone), now or utcnow())


async def list_milestones(
    repositories: Sequence[str] | None = None, *, include_closed: bool = False
) -> list[MilestoneSummary]:
    """Every milestone of the repositories (all when None) with its latest recorded status,
    worst first: a read of snapshots."""
    query = Milestone.all().prefetch_related("repository")
    if repositories is not None:
        query = query.filter(repository_named(repositories))
    if not include_closed:
        query = query.filter(state=MilestoneState.OPEN)
    today = utcnow().date()
    summaries = []
    for milestone in await query:
        snapshot = await Snapshot.filter(milestone=milestone).order_by("-id").first()
        metrics = snapshot.metrics if snapshot else {}
        status = snapshot.status if snapshot else GateStatus.NO_DATA
        target = milestone.target_date
        summaries.append(
            MilestoneSummary(
                repository=milestone.repository.full_name,
                name=milestone.name,
                status=status,
                overdue=bool(target and today > target and status is not GateStatus.COMPLETE),
                target_date=target,
                days_left=(target - today).days if target else None,
                state=milestone.state,
                pass_rate=metrics.get("pass_rate"),
                open_blocking=metrics.get("open_blocking", 0),
                approvers=list((await approvers_of(None, milestone.id, milestone_policy(milestone))).users),
            )
        )
    order = [
        GateStatus.BLOCKED,
        GateStatus.AT_RISK,
        GateStatus.NO_DATA,
        GateStatus.READY_FOR_SIGNOFF,
        GateStatus.COMPLETE,
    ]
    summaries.sort(
        key=lambda s: (not s.overdue, order.index(s.status), s.target_date or date.max, s.name, s.repository)
    )
    return summaries


async def awaiting_signoff(user_id: str, summaries: Sequence[MilestoneSummary]) -> list[MilestoneSummary]:
    """Of these milestones, those ready for sign-off where this person is an approver
    without a standing decision."""
    ready = [
        summary
        for summary in summaries
        if summary.status is GateStatus.READY_FOR_SIGNOFF and user_id in summary.approvers
    ]
    if not ready:
        return []
    decided = set(
        await Signoff.filter(
            active_user=user_id,
            milestone__name__in=[summary.name for summary in ready],
        ).values_list("milestone__repository__full_name", "milestone__name")
    )
    return [summary for summary in ready if (summary.repository, summary.name) not in decided]


@dataclass(frozen=True)
class MilestoneReading:
    """A milestone's verdict with the facts behind it: every list a person may ask for."""

    repository: str
    name: str
    description: str
    facts: MilestoneFacts
    verdict: Verdict
    milestone_id: int


async def read_milestone(repository: str, name: str, now: datetime | None = None) -> MilestoneReading:
    async with in_transaction() as client:
        milestone = await _milestone(client, repository, name)
        facts = await load_facts(client, milestone)
    verdict = evaluate(facts, now or utcnow())
    return MilestoneReading(repository, milestone.name, milestone.description, facts, verdict, milestone.id)


async def _milestone(client: BaseDBAsyncClient, repository: str | None, name: str) -> Milestone:
    query = Milestone.filter(name=name)
    if repository:
        query = query.filter(repository__full_name__iexact=repository)
    found = await query.using_db(client).limit(2)
    if not found:
        where = f" in {repository}" if repository else ""
        raise NotFound(f"no milestone {name}{where}")
    if len(found) > 1:
        raise NotFound(f"milestone {name} exists in several repositories; name one with --repo")
    return found[0]


# After every write ----------------------------------------------------------


def snapshot_metrics(verdict: Verdict) -> dict:
    """What a snapshot keeps: enough for trends and "since last time" digests."""
    metrics = verdict.metrics
    return {
        "status": verdict.status.value,
        "gate_green": verdict.gate_green,
        "criteria": {criterion.name: criterion.result.value for criterion in verdict.criteria},
        "pass_rate": None if metrics.pass_rate is None else round(metrics.pass_rate, 6),
        "tests": metrics.tests,
        "required_failing": len(verdict.blocking.failing_tests),
        "open_blocking": verdict.criteria[1].numbers["to_close"],
        "defects_open": metrics.defects_open,
        "coverage": None if metrics.coverage is None else round(metrics.coverage, 6),
        "regressions": len(metrics.regressions),
        "flaky": len(metrics.flaky),
        "approvals": verdict.criteria[3].numbers["approvals"],
        "rejections": verdict.criteria[3].numbers["rejections"],
    }


async def _after_change(client: BaseDBAsyncClient, milestone: Milestone, at: datetime | None = None) -> MilestoneChange:
    """`at`: when the change happened (a launch's end, an issue's update), for the trend."""
    now = utcnow()
    # Read under the caller's lock: a writer that read the milestone before it must not
    # mark a completion another writer has marked since.
    await milestone.refresh_from_db(fields=["completed_at", "completed_with"], using_db=client)
    # Stamped with the event's time for the trend; "the current state" is the snapshot
    # recorded last, whatever its time (a backfill records the past in order).
    taken_at = min(at or now, now)
    last = await Snapshot.filter(milestone=milestone).order_by("-id").using_db(client).first()
    facts = await load_facts(client, milestone)
    if await _end_approvals_of_former_approvers(client, milestone, facts):
        facts = await load_facts(client, milestone)
    verdict = evaluate(facts, now)
    dismissed: list[Signoff] = []
    was_green = bool(last and last.metrics.get("gate_green"))
    if was_green and not verdict.gate_green:
        dismissed = await _dismiss_stale_approvals(client, milestone, verdict)
        if dismissed:
            facts = await load_facts(client, milestone)
            verdict = evaluate(facts, now)
    completed = reopened = False
    if verdict.status is GateStatus.COMPLETE and milestone.completed_at is None:
        milestone.completed_at = now
        milestone.completed_with = [
            {"user": decision.user_id, "at": decision.at.isoformat()} for decision in counted_approvals(facts)
        ]
        completed = True
    elif verdict.status is not GateStatus.COMPLETE and milestone.completed_at is not None:
        milestone.completed_at = None
        milestone.completed_with = []
        reopened = True
    if completed or reopened:
        await milestone.save(using_db=client, update_fields=["completed_at", "completed_with", "updated_at"])
    metrics = snapshot_metrics(verdict)
    await _mark_owed(client, milestone, dismissed, completed or reopened)
    if last is None or last.metrics != metrics:
        await Snapshot.create(
            using_db=client, milestone=milestone, taken_at=taken_at, status=verdict.status, metrics=metrics
        )
    return MilestoneChange(
        milestone=milestone,
        verdict=verdict,
        previous_status=last.status if last else None,
        dismissed=dismissed,
        completed=completed,
        reopened=reopened,
    )


async def _mark_owed(
    client: BaseDBAsyncClient, milestone: Milestone, dismissed: list[Signoff], completion: bool
) -> None:
    """What the outside world is owed by a change: the pull requests' checks, the live sign-off
    request's message, the dismissed approvers' messages, the completion's announcement."""
    await mark_showing(client, milestone)
    live = await SignoffRequest.filter(live_for=milestone.id).using_db(client).values_list("id", flat=True)
    await outbox.mark(client, outbox.SIGNOFF_REQUEST, live)
    await outbox.mark(client, outbox.SIGNOFF_DISMISSAL, [entry.id for entry in dismissed])
    await outbox.mark(client, outbox.MILESTONE_ALERTS, [milestone.id])
    if completion:
        await outbox.mark(client, outbox.MILESTONE_COMPLETION, [milestone.id])
        if milestone.github_number is not None and milestone_policy(milestone).close_on_complete:
            await outbox.mark(client, outbox.GITHUB_MILESTONE_STATE, [milestone.id])


async def _end_approvals_of_former_approvers(
    client: BaseDBAsyncClient, milestone: Milestone, facts: MilestoneFacts
) -> bool:
    """An approval stops with its approver (removed in Slack or the policy file, or gone from a
    user group), so that it cannot count again if they return. A rejection stands until its
    author withdraws it."""
    former = [
        decision.user_id
        for decision in facts.decisions
        if decision.decision is Decision.APPROVE and decision.user_id not in facts.approvers
    ]
    if not former:
        return False
    for approval in await Signoff.filter(
        milestone=milestone, active_user__in=former, decision=Decision.APPROVE
    ).using_db(client):
        await _end(client, approval, Decision.DISMISS, approval.user_id, "no longer an approver")
    return True


async def _dismiss_stale_approvals(client: BaseDBAsyncClient, milestone: Milestone, verdict: Verdict) -> list[Signoff]:
    """Criteria 1-3 stopped holding: every standing approval, given on what no longer holds, ends."""
    stale = await Signoff.filter(milestone=milestone, valid=True, decision=Decision.APPROVE).using_db(client)
    note = f"gate turned red: {verdict.what_blocks_signoff}"
    return [await _end(client, approval, Decision.DISMISS, approval.user_id, note) for approval in stale]
