"""After every write: the gate evaluated afresh, stale approvals dismissed, completion marked,
a snapshot appended when the metrics moved, and what the outside world is owed marked in the outbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from core import outbox
from core.catalog import lock_milestones, milestone_policy
from core.clock import utcnow
from core.db import column
from core.enums import Decision, GateStatus
from core.facts import load_facts
from core.gate import MilestoneFacts, Verdict, counted_approvals, evaluate
from core.models import Milestone, Signoff, SignoffRequest, Snapshot
from core.pull_requests import mark_showing


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


def older(incoming: datetime | None, stored: datetime | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


async def end_decision(
    client: BaseDBAsyncClient, standing: Signoff, how: Decision, user_id: str, note: str, *, via: str = "system"
) -> Signoff:
    """End a standing decision; `via` is where the person ended it ("system" when the rules did)."""
    standing.valid = False
    standing.active_user = None
    await standing.save(using_db=client, update_fields=["valid", "active_user"])
    return await Signoff.create(
        using_db=client,
        milestone_id=standing.milestone_id,
        user_id=user_id,
        decision=how,
        comment=note,
        ends=standing,
        valid=False,
        via=via,
    )


def snapshot_metrics(verdict: Verdict) -> dict[str, Any]:
    """What a snapshot keeps: enough for trends and "since last time" digests."""
    metrics = verdict.metrics
    return {
        "status": verdict.status.value,
        "gate_green": verdict.gate_green,
        "criteria": {criterion.name: criterion.result.value for criterion in verdict.criteria},
        "pass_rate": None if metrics.pass_rate is None else round(metrics.pass_rate, 6),
        "tests": metrics.tests,
        "required_failing": len(verdict.blocking.failing_tests),
        "open_blocking": verdict.criteria.defects.numbers.to_close,
        "defects_open": metrics.defects_open,
        "coverage": None if metrics.coverage is None else round(metrics.coverage, 6),
        "regressions": len(metrics.regressions),
        "flaky": len(metrics.flaky),
        "approvals": verdict.criteria.signoff.numbers.approvals,
        "rejections": verdict.criteria.signoff.numbers.rejections,
        "lifecycle": verdict.lifecycle.value,
        "completion": verdict.completion,
        # Triage: failing tests no open defect covers, those one does, and quarantined tests.
        "failing_new": len(verdict.triage.new),
        "failing_known": len(verdict.triage.known),
        "quarantined": len(verdict.triage.quarantined),
    }


async def after_change(
    client: BaseDBAsyncClient,
    milestone: Milestone,
    at: datetime | None = None,
    *,
    parents: bool = True,
    locked: bool = False,
) -> MilestoneChange:
    """`at`: when the change happened (a launch's end, an issue's update), for the trend.
    The milestones that roll this one up are evaluated again after it (`parents`).
    `locked`: the milestone is a row `lock_milestones` gave, read under the caller's lock."""
    now = utcnow()
    if not locked:
        # Read under the caller's lock: a writer that read the milestone before it must not
        # mark a completion another writer has marked since.
        await milestone.refresh_from_db(fields=["completed_at", "completed_with", "lifecycle"], using_db=client)
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
    lifecycle_moved = milestone.lifecycle is not verdict.lifecycle
    if lifecycle_moved:
        milestone.lifecycle = verdict.lifecycle
    if completed or reopened or lifecycle_moved:
        await milestone.save(
            using_db=client, update_fields=["completed_at", "completed_with", "lifecycle", "updated_at"]
        )
    metrics = snapshot_metrics(verdict)
    await _mark_owed(client, milestone, dismissed, completed or reopened)
    if last is None or last.metrics != metrics:
        await Snapshot.create(
            using_db=client, milestone=milestone, taken_at=taken_at, status=verdict.status, metrics=metrics
        )
        if parents:
            await _reevaluate_parents(client, milestone, at)
    return MilestoneChange(
        milestone=milestone,
        verdict=verdict,
        previous_status=last.status if last else None,
        dismissed=dismissed,
        completed=completed,
        reopened=reopened,
    )


async def _reevaluate_parents(client: BaseDBAsyncClient, child: Milestone, at: datetime | None) -> None:
    """A child's new state is news for every milestone that rolls it up: their gates, checks,
    alerts and digests follow. Policy files refuse cycles, so this ends; `seen` guards the
    policies stored before that check."""
    seen = {child.id}
    pending = [child]
    while pending:
        current = pending.pop()
        candidates = await Milestone.filter(repository_id=current.repository_id).exclude(id=current.id).using_db(client)
        parents = [
            parent
            for parent in candidates
            if parent.id not in seen and milestone_policy(parent).includes_name(parent.name, current.name)
        ]
        if not parents:
            continue
        for parent in await lock_milestones(client, [parent.id for parent in parents]):
            seen.add(parent.id)
            await after_change(client, parent, at, parents=False, locked=True)
            pending.append(parent)


async def _mark_owed(
    client: BaseDBAsyncClient, milestone: Milestone, dismissed: list[Signoff], completion: bool
) -> None:
    """What the outside world is owed by a change: the pull requests' checks, the live sign-off
    request's message, the dismissed approvers' messages, the completion's announcement."""
    await mark_showing(client, milestone)
    live = await column(SignoffRequest.filter(live_for=milestone.id).using_db(client), "id")
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
        await end_decision(client, approval, Decision.DISMISS, approval.user_id, "no longer an approver")
    return True


async def _dismiss_stale_approvals(client: BaseDBAsyncClient, milestone: Milestone, verdict: Verdict) -> list[Signoff]:
    """Criteria 1-3 stopped holding: every standing approval, given on what no longer holds, ends."""
    stale = await Signoff.filter(milestone=milestone, valid=True, decision=Decision.APPROVE).using_db(client)
    note = f"gate turned red: {verdict.what_blocks_signoff}"
    return [await end_decision(client, approval, Decision.DISMISS, approval.user_id, note) for approval in stale]
