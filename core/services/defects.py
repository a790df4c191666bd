"""Defects: GitHub issues applied in order, and labels renamed or deleted on GitHub."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from core import defect_links
from core.catalog import ensure_repository, lock_milestones, locked_or_first
from core.clock import utcnow
from core.links import affected_selectors
from core.models import Defect, Milestone, Repository
from core.policy import DefectsConfig
from core.services.changes import MilestoneChange, after_change, older
from core.services.policies import classify, classify_defects, github_milestone, repository_policy


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
    # None: not given (the event did not carry it), so the stored links stay as they are.
    body: str | None = None


@dataclass
class DefectOutcome:
    applied: bool
    defect: Defect | None
    changes: list[MilestoneChange] = field(default_factory=list)


async def upsert_defect(repository: str, issue: IssueFacts) -> DefectOutcome:
    """Apply an issue's state; an event older than the stored one is ignored."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        policy = repository_policy(repo)
        # Every issue seen is kept, defect or not, so that its newest update time guards
        # against an older event (say, before its bug label was removed) arriving late.
        # Locked, so that an older event read before a newer one commits cannot win after it.
        defect = await locked_or_first(client, repo, Defect, number=issue.number)
        if defect is not None and older(issue.updated_at, defect.source_updated_at):
            return DefectOutcome(False, defect)
        defect = defect or Defect(repository=repo, number=issue.number)
        before = defect.milestone_id if defect.id else None
        shown_before = _shown(defect, before) if defect.id else None
        milestone = await github_milestone(client, repo, policy, issue.milestone_number, issue.milestone_title)
        # The body as stored (or not carried by the event): the links stand. New tests are
        # linked as launches bring them, and a change of the required tests relinks.
        links_stand = bool(defect.id) and not issue.deleted and issue.body in (None, defect.body)
        _apply_issue(defect, issue, policy.defects, milestone, repo.label_aliases)
        shown_after = _shown(defect, milestone.id if milestone else None)
        # A milestone sees a defect only while it counts: through its own defects, and through
        # the defects linked to its tests. One that counts neither before nor after, or that
        # looks the same with the same links, changes no milestone's gate.
        reshown = shown_before != shown_after
        if links_stand:
            affects = list(defect.affects or [])
            linked_before = linked_after = await defect_links.linked_tests(client, defect.id) if reshown else set()
        else:
            linked_before = await defect_links.linked_tests(client, defect.id) if defect.id else set()
            if issue.deleted:
                affects, linked_after = [], set()
            else:
                required = await defect_links.required_ids(client, repo.id) if issue.body else []
                affects = affected_selectors(issue.body, required)
                linked_after = await defect_links.matching_tests(client, repo.id, affects)
        seen = shown_before is not None or shown_after is not None
        touched: list[Milestone] = []
        if seen and (reshown or linked_before != linked_after):
            holding = await defect_links.milestones_of_tests(client, repo.id, linked_before | linked_after)
            shown_in = [before, milestone.id if milestone else None] if reshown else []
            touched = await lock_milestones(client, [*shown_in, *holding])
        defect.affects = affects
        if issue.deleted:
            defect.body = None
        elif issue.body is not None:
            defect.body = issue.body
        await defect.save(using_db=client)
        if linked_after != linked_before:
            await defect_links.store_links(client, defect.id, linked_before, linked_after)
        changes = [await after_change(client, m, issue.updated_at, locked=True) for m in touched]
    return DefectOutcome(True, defect, changes)


def _shown(defect: Defect, milestone_id: int | None) -> tuple[object, ...] | None:
    """What milestones see of a defect (core.facts reads these of the defects that count)."""
    if not defect.counts:
        return None
    return (milestone_id, defect.title, defect.severity, defect.state, defect.url, defect.resolved_at)


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
    await classify_defects(client, repo, repository_policy(repo).defects, relabel=relabel)
    return [await after_change(client, milestone) for milestone in milestones]
