"""Sign-off decisions: approvals and rejections recorded, withdrawn or dismissed, by the rules of section 3.4."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core.approvers import Approvers, approvers_of
from core.catalog import lock_milestones, milestone_named, milestone_policy
from core.clock import utcnow
from core.enums import Decision
from core.facts import load_facts
from core.gate import Verdict, evaluate
from core.models import Signoff, SignoffRequest
from core.policy import MilestonePolicy
from core.services.changes import MilestoneChange, after_change, end_decision

# What the reason dialog takes (Slack's plain_text_input max_length); longer ones, sent by
# anything but that dialog, are refused.
REASON_LIMIT = 2000

# Where a person made a decision: Slack's buttons and commands, or the milestone page.
Via = Literal["slack", "web"]


@dataclass
class DecisionOutcome:
    recorded: bool
    entry: Signoff
    change: MilestoneChange | None = None


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
    via: Via = "slack",
) -> DecisionOutcome:
    """Record an approver's approval or rejection; the same decision twice is one record.

    Raises NotAnApprover for anyone else, and SignoffRefused for an approval the policy
    does not allow yet (criteria 1-3 not met) or at all (the requester's own)."""
    if decision not in (Decision.APPROVE, Decision.REJECT):
        raise ValueError("a decision is approve or reject")
    if decision is Decision.REJECT and not comment.strip():
        raise ValueError("a rejection needs a reason")
    if len(comment) > REASON_LIMIT:
        raise SignoffRefused(f"a reason takes at most {REASON_LIMIT:,} characters; this one has {len(comment):,}")
    try:
        async with in_transaction() as client:
            milestone = await milestone_named(client, repository, milestone_name)
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
                await end_decision(client, standing, Decision.WITHDRAW, user_id, "changed their decision", via=via)
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
                via=via,
            )
            change = await after_change(client, milestone)
            return DecisionOutcome(True, entry, change)
    except IntegrityError:
        # A concurrent click by the same person won the unique (milestone, active_user).
        async with in_transaction() as client:
            milestone = await milestone_named(client, repository, milestone_name)
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


async def withdraw_decision(
    repository: str, milestone_name: str, user_id: str, *, via: Via = "slack"
) -> DecisionOutcome | None:
    """End the person's standing decision; None when they have none.

    Raises NotAnApprover for someone with no standing decision who is not an approver: a
    former approver may still withdraw the rejection they left standing."""
    return await _end_standing(
        repository, milestone_name, user_id, Decision.WITHDRAW, "withdrawn", strangers_refused=True, via=via
    )


async def dismiss_decision(
    repository: str, milestone_name: str, user_id: str, *, by: str, by_admin: bool
) -> DecisionOutcome | None:
    """A workspace admin ends someone's standing decision: a rejection by someone who left
    would otherwise block for good. None when they have none."""
    if not by_admin:
        raise SignoffRefused("only workspace admins can dismiss someone else's decision")
    return await _end_standing(repository, milestone_name, user_id, Decision.DISMISS, f"dismissed by {by}")


async def _end_standing(
    repository: str,
    milestone_name: str,
    user_id: str,
    how: Decision,
    note: str,
    *,
    strangers_refused: bool = False,
    via: Via = "slack",
) -> DecisionOutcome | None:
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        standing = await Signoff.get_or_none(milestone=milestone, active_user=user_id, using_db=client)
        if standing is None:
            if strangers_refused:
                approvers = await approvers_of(client, milestone.id, milestone_policy(milestone))
                if user_id not in approvers:
                    raise NotAnApprover(milestone.name, approvers)
            return None
        entry = await end_decision(client, standing, how, user_id, note, via=via)
        return DecisionOutcome(True, entry, await after_change(client, milestone))


async def signoff_entry(entry_id: int) -> tuple[Signoff, str, str] | None:
    """A trail entry with its milestone's repository and name."""
    entry = await Signoff.get_or_none(id=entry_id).prefetch_related("milestone__repository")
    if entry is None:
        return None
    return entry, entry.milestone.repository.full_name, entry.milestone.name
