"""Scheduled digests: channels' subscriptions, the claim of each scheduled fire, and what a
digest reports, with what changed since the previous one to the same channel."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.catalog import NotFound, repository_named, stored_repository
from core.channels import channel_repository
from core.clock import utcnow
from core.db import column
from core.enums import Decision, GateStatus, MilestoneState
from core.models import ChannelLink, DigestRun, Milestone, Subscription
from core.readings import MilestoneReading
from core.schedule import Schedule
from core.services import read_milestone

CLAIMED, SENT, FAILED, MISSED = "claimed", "sent", "failed", "missed"
# Worst first, as a digest lists them: overdue, at risk, blocked, then the rest.
ORDER = [GateStatus.AT_RISK, GateStatus.BLOCKED, GateStatus.NO_DATA, GateStatus.READY_FOR_SIGNOFF, GateStatus.COMPLETE]


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    team_id: str
    channel_id: str
    repository: str | None
    milestone: str | None
    schedule: Schedule
    updated_at: datetime
    tag: str | None = None

    @property
    def scope(self) -> str:
        if self.milestone:
            return f"{self.milestone} ({self.repository})"
        where = self.repository or "every repository linked to the channel"
        return f"milestones tagged {self.tag} in {where}" if self.tag else where


def schedule_of(subscription: Subscription) -> Schedule:
    hours, minutes = subscription.at.split(":")
    return Schedule(subscription.kind, time(int(hours), int(minutes)), subscription.zone, subscription.weekday)  # type: ignore[arg-type]


def _view(subscription: Subscription) -> SubscriptionView:
    repository = subscription.repository.full_name if subscription.repository else None
    milestone = subscription.milestone.name if subscription.milestone else None
    return SubscriptionView(
        subscription.id,
        subscription.team_id,
        subscription.channel_id,
        repository,
        milestone,
        schedule_of(subscription),
        subscription.updated_at,
        subscription.tag,
    )


async def subscribe(
    team_id: str,
    channel_id: str,
    schedule: Schedule,
    *,
    by: str,
    repository: str | None = None,
    milestone: str | None = None,
    tag: str | None = None,
) -> tuple[SubscriptionView, bool]:
    """Subscribe the channel (to a milestone, a repository, or what is linked to it); subscribing
    the same scope again changes its schedule. Returns the subscription and whether it is new."""
    async with in_transaction() as client:
        repo = await stored_repository(repository, client) if repository else None
        if repository and repo is None:
            raise NotFound(f"no repository {repository}")
        found = await Milestone.get_or_none(repository=repo, name=milestone, using_db=client) if milestone else None
        if milestone and found is None:
            raise NotFound(f"no milestone {milestone} in {repository}")
        key = f"milestone:{found.id}" if found else f"repository:{repo.id}" if repo else "channel"
        if tag and not found:
            # Hashed: a tag of 40 characters would not fit the key beside the repository's id.
            key = f"tag:{repo.id if repo else 'channel'}:{hashlib.sha256(tag.lower().encode()).hexdigest()[:16]}"
        values = {
            "repository": repo,
            "milestone": found,
            "tag": tag if not found else None,
            "kind": schedule.kind,
            "weekday": schedule.weekday,
            "at": f"{schedule.at:%H:%M}",
            "zone": schedule.zone,
            "created_by": by,
        }
        subscription, created = await Subscription.update_or_create(
            team_id=team_id, channel_id=channel_id, scope_key=key, defaults=values, using_db=client
        )
        await subscription.fetch_related("repository", "milestone", using_db=client)
    return _view(subscription), created


async def unsubscribe(
    team_id: str,
    channel_id: str,
    *,
    repository: str | None = None,
    milestone: str | None = None,
    tag: str | None = None,
) -> int:
    """Remove the channel's subscription to this scope (all of the channel's when none is named);
    returns how many were removed. A removed subscription never fires again."""
    query = Subscription.filter(team_id=team_id, channel_id=channel_id)
    if milestone:
        query = query.filter(milestone__name=milestone, milestone__repository__full_name__iexact=repository)
    elif tag:
        query = query.filter(tag__iexact=tag, milestone_id=None)
        query = (
            query.filter(repository__full_name__iexact=repository) if repository else query.filter(repository_id=None)
        )
    elif repository:
        query = query.filter(repository__full_name__iexact=repository, milestone_id=None, tag=None)
    return await query.delete()


async def channel_subscriptions(team_id: str, channel_id: str) -> list[SubscriptionView]:
    rows = (
        await Subscription.filter(team_id=team_id, channel_id=channel_id)
        .order_by("id")
        .prefetch_related("repository", "milestone")
    )
    return [_view(row) for row in rows]


async def find_subscription(subscription_id: int) -> SubscriptionView | None:
    row = await Subscription.get_or_none(id=subscription_id).prefetch_related("repository", "milestone")
    return _view(row) if row else None


async def every_subscription() -> list[SubscriptionView]:
    """What the clock schedules."""
    rows = await Subscription.all().order_by("id").prefetch_related("repository", "milestone")
    return [_view(row) for row in rows]


# Fires -----------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A fire this clock holds; `taken_over` when another clock claimed it first and stopped
    renewing (it may have posted before it died)."""

    run: DigestRun
    taken_over: bool = False


async def claim_fire(subscription_id: int, scheduled_for: datetime, *, lease: timedelta) -> Claim | None:
    """Claim one scheduled fire for `lease`; None when another clock holds it, it is done, or the
    subscription is gone. A claim whose lease ran out is taken over."""
    now = utcnow()
    try:
        run = await DigestRun.create(
            subscription_id=subscription_id, scheduled_for=scheduled_for, claimed_at=now, lease_until=now + lease
        )
        return Claim(run)
    except IntegrityError:
        pass
    held = await DigestRun.get_or_none(subscription_id=subscription_id, scheduled_for=scheduled_for)
    if held is None or not _expired(held, now):
        return None
    return await _take_over(held, lease, now)


def _expired(run: DigestRun, now: datetime) -> bool:
    return run.status == CLAIMED and (run.lease_until is None or run.lease_until < now)


async def _take_over(run: DigestRun, lease: timedelta, now: datetime) -> Claim | None:
    # Only if nobody renewed or took it since it was read: of two clocks taking over, one does.
    if not await DigestRun.filter(id=run.id, status=CLAIMED, lease_until=run.lease_until).update(
        lease_until=now + lease, claimed_at=now
    ):
        return None
    run.lease_until, run.claimed_at = now + lease, now
    return Claim(run, taken_over=True)


async def renew_claim(run: DigestRun, lease: timedelta) -> bool:
    """Keep the claim while posting; False when it was lost (taken over after a stall, or finished)."""
    until = utcnow() + lease
    if await DigestRun.filter(id=run.id, status=CLAIMED, lease_until=run.lease_until).update(lease_until=until):
        run.lease_until = until
        return True
    return False


async def expired_claims() -> list[DigestRun]:
    """Fires claimed by a clock that stopped renewing: it died, or stalled, while posting them."""
    now = utcnow()
    return await DigestRun.filter(Q(lease_until=None) | Q(lease_until__lt=now), status=CLAIMED).order_by("id")


async def mark_missed(run: DigestRun, reason: str) -> bool:
    """An expired claim past the grace: recorded as missed, once (False when another clock did)."""
    return bool(
        await DigestRun.filter(id=run.id, status=CLAIMED, lease_until=run.lease_until).update(
            status=MISSED, error=reason, finished_at=utcnow()
        )
    )


async def finish_fire(
    run: DigestRun, status: str, *, attempts: int, error: str | None = None, reported: dict[str, Any] | None = None
) -> None:
    run.status, run.attempts, run.error, run.finished_at = status, attempts, error, utcnow()
    run.reported = reported or {}
    await run.save(update_fields=["status", "attempts", "error", "finished_at", "reported"])


async def last_reported(team_id: str, channel_id: str, limit: int = 50) -> dict[str, Any]:
    """What the digests sent to the channel last reported, per milestone id (as text): of each
    milestone, the newest report, whichever subscription of the channel it came with."""
    runs = (
        await DigestRun.filter(subscription__team_id=team_id, subscription__channel_id=channel_id, status=SENT)
        .order_by("-finished_at", "-id")
        .limit(limit)
    )
    reported: dict[str, Any] = {}
    for run in runs:
        for milestone_id, baseline in run.reported.items():
            reported.setdefault(milestone_id, baseline)
    return reported


# What a digest reports -------------------------------------------------------


async def digest_readings(subscription: SubscriptionView) -> list[MilestoneReading]:
    """The open milestones in the subscription's scope, worst first."""
    if subscription.milestone and subscription.repository:
        names = [(subscription.repository, subscription.milestone)]
    else:
        repositories = (
            [subscription.repository]
            if subscription.repository
            else await _linked(subscription.team_id, subscription.channel_id)
        )
        rows = await Milestone.filter(repository_named(repositories), state=MilestoneState.OPEN).prefetch_related(
            "repository"
        )
        names = [(row.repository.full_name, row.name) for row in rows]
    readings = [await read_milestone(repository, name) for repository, name in names]
    if subscription.tag:
        wanted = subscription.tag.casefold()
        readings = [reading for reading in readings if wanted in {tag.casefold() for tag in reading.tags}]
    readings.sort(key=lambda reading: (not reading.verdict.overdue, ORDER.index(reading.verdict.status), reading.name))
    return readings


async def _linked(team_id: str, channel_id: str) -> list[str]:
    linked = await channel_repository(team_id, channel_id)
    if linked:
        return [linked]
    return await column(ChannelLink.filter(team_id=team_id, channel_id=channel_id), "repository__full_name")


def baseline(reading: MilestoneReading) -> dict[str, Any]:
    """What the next digest compares with: enough to say what changed, by name."""
    verdict = reading.verdict
    return {
        "status": verdict.status.value,
        "completion": verdict.completion,
        "pass_rate": verdict.metrics.pass_rate,
        "defects": {
            str(defect.number): defect.severity.value
            for defect in reading.facts.defects
            if defect.state.value == "open"
        },
        "failing": sorted(test.name for test in verdict.blocking.failing_tests),
        "approvals": sorted(
            decision.user_id for decision in reading.facts.decisions if decision.decision is Decision.APPROVE
        ),
        "known": sorted(failure.name for failure in verdict.triage.known),
        "quarantined": sorted(test.name for test in verdict.triage.quarantined),
    }


@dataclass(frozen=True)
class Changes:
    """What changed for one milestone since the previous digest to the channel."""

    first: bool
    pass_rate_delta: float | None = None
    completion_delta: int | None = None
    status_before: str | None = None
    new_defects: dict[str, int] = field(default_factory=dict)
    closed_defects: dict[str, int] = field(default_factory=dict)
    new_failing: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    new_approvals: list[str] = field(default_factory=list)
    # Failures a defect now covers, and tests put into or taken out of quarantine.
    newly_known: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not self.first and not (
            self.pass_rate_delta
            or self.completion_delta
            or self.status_before
            or self.new_defects
            or self.closed_defects
            or self.new_failing
            or self.fixed
            or self.new_approvals
            or self.newly_known
            or self.quarantined
            or self.released
        )


def changes(before: dict[str, Any] | None, now: dict[str, Any]) -> Changes:
    if before is None:
        return Changes(first=True)
    delta = None
    if before.get("pass_rate") is not None and now.get("pass_rate") is not None:
        delta = round(now["pass_rate"] - before["pass_rate"], 4) or None
    completion_delta = None
    if before.get("completion") is not None and now.get("completion") is not None:
        completion_delta = (now["completion"] - before["completion"]) or None
    old_defects, new_defects = before.get("defects", {}), now.get("defects", {})
    return Changes(
        first=False,
        pass_rate_delta=delta,
        completion_delta=completion_delta,
        status_before=before.get("status") if before.get("status") != now.get("status") else None,
        new_defects=_by_severity(new_defects[number] for number in new_defects if number not in old_defects),
        closed_defects=_by_severity(old_defects[number] for number in old_defects if number not in new_defects),
        new_failing=sorted(set(now.get("failing", [])) - set(before.get("failing", []))),
        fixed=sorted(set(before.get("failing", [])) - set(now.get("failing", []))),
        new_approvals=sorted(set(now.get("approvals", [])) - set(before.get("approvals", []))),
        # A baseline from before triage has no such lists: nothing is new against it.
        newly_known=_added(before, now, "known"),
        quarantined=_added(before, now, "quarantined"),
        released=_added(now, before, "quarantined"),
    )


def _added(before: dict[str, Any], now: dict[str, Any], key: str) -> list[str]:
    if key not in before:
        return []
    return sorted(set(now.get(key, [])) - set(before[key]))


def _by_severity(severities: Sequence[str] | object) -> dict[str, int]:
    counts: dict[str, int] = {}
    for severity in severities:  # type: ignore[union-attr]
        counts[severity] = counts.get(severity, 0) + 1
    return counts
