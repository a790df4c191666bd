"""Reads: verdicts, readings and lists of milestones; they write nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from core.approvers import approvers_of
from core.catalog import milestone_named, milestone_policy, repository_named
from core.clock import utcnow
from core.enums import DefectState, GateStatus, Lifecycle, TestStatus
from core.facts import lifecycle_today, load_facts, team_zone
from core.gate import Verdict, evaluate
from core.lifecycle import CURRENT, days_left, today_in
from core.models import DefectLink, Launch, Milestone, MilestoneTest, Signoff, Snapshot, TestResult
from core.readings import LaunchSummary, MilestoneReading, MilestoneSummary, SignoffState


async def get_verdict(repository: str | None, milestone_name: str, now: datetime | None = None) -> Verdict:
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
    return await milestone_verdict(milestone, now)


async def find_milestone(repository: str | None, milestone_name: str) -> Milestone:
    """The milestone with its repository; NotFound when it is not one, or is ambiguous."""
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        await milestone.fetch_related("repository", using_db=client)
    return milestone


async def milestone_verdict(milestone: Milestone, now: datetime | None = None) -> Verdict:
    async with in_transaction() as client:
        return evaluate(await load_facts(client, milestone), now or utcnow())


def milestone_tags(milestone: Milestone) -> list[str]:
    """The policy's tags, then those set in the CLI or Slack."""
    return list(dict.fromkeys([*milestone_policy(milestone).tags, *(milestone.tags or [])]))


async def list_milestones(
    repositories: Sequence[str] | None = None,
    *,
    include_all: bool = False,
    tag: str | None = None,
    now: datetime | None = None,
) -> list[MilestoneSummary]:
    """The milestones of the repositories (all when None) with their latest recorded status:
    overdue and active first, then planned, worst first within each; completed and closed ones
    only with `include_all`. A read of snapshots; the lifecycle is computed for today in each
    team's zone."""
    query = Milestone.all().prefetch_related("repository")
    if repositories is not None:
        query = query.filter(repository_named(repositories))
    now = now or utcnow()
    summaries = []
    for milestone in await query:
        tags = milestone_tags(milestone)
        if tag is not None and tag.casefold() not in {own.casefold() for own in tags}:
            continue
        policy = milestone_policy(milestone)
        snapshot = await Snapshot.filter(milestone=milestone).order_by("-id").first()
        metrics = snapshot.metrics if snapshot else {}
        status = snapshot.status if snapshot else GateStatus.NO_DATA
        target = milestone.target_date
        today = today_in(team_zone(policy), now)
        lifecycle = lifecycle_today(milestone, policy, status, now)
        if not include_all and lifecycle not in CURRENT:
            continue
        summaries.append(
            MilestoneSummary(
                repository=milestone.repository.full_name,
                name=milestone.name,
                status=status,
                overdue=lifecycle is Lifecycle.OVERDUE,
                target_date=target,
                days_left=days_left(today, target),
                state=milestone.state,
                pass_rate=metrics.get("pass_rate"),
                open_blocking=metrics.get("open_blocking", 0),
                approvers=list((await approvers_of(None, milestone.id, policy)).users),
                lifecycle=lifecycle,
                start_date=policy.start or milestone.start_date,
                completion=metrics.get("completion"),
                tags=tags,
                failing_new=metrics.get("failing_new", 0),
                failing_known=metrics.get("failing_known", 0),
                quarantined=metrics.get("quarantined", 0),
            )
        )
    order = [
        GateStatus.BLOCKED,
        GateStatus.AT_RISK,
        GateStatus.NO_DATA,
        GateStatus.READY_FOR_SIGNOFF,
        GateStatus.COMPLETE,
    ]
    # Overdue and active together (overdue first within a status), then planned, then the rest.
    group = {
        Lifecycle.OVERDUE: 0,
        Lifecycle.ACTIVE: 0,
        Lifecycle.PLANNED: 1,
        Lifecycle.COMPLETED: 2,
        Lifecycle.CLOSED: 3,
    }
    summaries.sort(
        key=lambda s: (
            group[s.lifecycle],
            not s.overdue,
            order.index(s.status),
            s.start_date or date.min if s.lifecycle is Lifecycle.PLANNED else date.min,
            s.target_date or date.max,
            s.name,
            s.repository,
        )
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


async def read_milestone(repository: str, name: str, now: datetime | None = None) -> MilestoneReading:
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, name)
        facts = await load_facts(client, milestone)
    verdict = evaluate(facts, now or utcnow())
    return MilestoneReading(
        repository, milestone.name, milestone.description, facts, verdict, milestone.id, milestone_tags(milestone)
    )


async def signoff_state(repository: str, milestone_name: str, now: datetime | None = None) -> SignoffState:
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        facts = await load_facts(client, milestone)
        approvers = await approvers_of(client, milestone.id, facts.policy)
        trail = await Signoff.filter(milestone=milestone).order_by("created_at", "id").using_db(client)
    reading = MilestoneReading(
        repository,
        milestone.name,
        milestone.description,
        facts,
        evaluate(facts, now or utcnow()),
        milestone.id,
        milestone_tags(milestone),
    )
    return SignoffState(reading, approvers, trail, milestone.completed_at, milestone.completed_with)


async def latest_launches(milestone: Milestone) -> list[LaunchSummary]:
    """The latest launch counted of each plan of the milestone, by plan name."""
    latest = []
    for plan in sorted(await milestone.plans.all(), key=lambda plan: plan.name):
        launch = await Launch.filter(plan=plan, superseded=False).order_by("-finished_at", "-id").first()
        if launch is not None:
            latest.append(
                LaunchSummary(
                    plan=plan.name,
                    id=launch.id,
                    source=launch.source_id,
                    attempt=launch.attempt,
                    finished_at=launch.finished_at,
                    commit_sha=launch.commit_sha,
                    branch=launch.branch,
                    url=launch.url,
                    tests=launch.tests,
                    failing=launch.failed + launch.errors,
                )
            )
    return latest


class TestState(NamedTuple):
    """One test's latest state in a milestone, as `milestones export` writes it."""

    id: str
    plan: str | None
    state: str
    # Failing: when the failure began; otherwise when it last ran.
    since: datetime | None
    message: str | None
    linked_defect: int | None = None


setattr(TestState, "__test__", False)  # noqa: B010


async def test_states(repository: str, name: str) -> list[TestState]:
    """Every test of the milestone with its latest state, by name."""
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, name)
        rows = await (
            MilestoneTest.filter(milestone_id=milestone.id)
            .using_db(client)
            .values_list(
                "test_case_id",
                "test_case__classname",
                "test_case__name",
                "latest_status",
                "latest_launch_id",
                "latest_launch__plan__name",
                "failing_since__finished_at",
                "last_run_at",
            )
        )
        failing = [row for row in rows if row[3] is not None and TestStatus(row[3]).is_failing]
        messages: dict[tuple[int, int], str | None] = {}
        for launch_id in {row[4] for row in failing}:
            found = await (
                TestResult.filter(launch_id=launch_id, status__in=[TestStatus.FAILED, TestStatus.ERROR])
                .using_db(client)
                .values_list("test_case_id", "message")
            )
            messages.update({(launch_id, test_case_id): message for test_case_id, message in found})
        linked = await _linked_defect_by_test(client, milestone.id)
    states = []
    for test_case_id, classname, test_name, status, launch_id, plan, failing_since, last_run in rows:
        is_failing = status is not None and TestStatus(status).is_failing
        states.append(
            TestState(
                id=f"{classname}.{test_name}" if classname else test_name,
                plan=plan,
                state=TestStatus(status).value if status is not None else "not run",
                since=(failing_since or last_run) if is_failing else last_run,
                message=messages.get((launch_id, test_case_id)) if is_failing else None,
                linked_defect=linked.get(test_case_id),
            )
        )
    return sorted(states, key=lambda state: (state.id, state.plan or ""))


async def _linked_defect_by_test(client: BaseDBAsyncClient, milestone_id: int) -> dict[int, int]:
    """The defect each test of the milestone is linked to: an open one before a resolved one,
    then the oldest, so an export names the defect that explains a failure today."""
    rows = await (
        DefectLink.filter(test_case__milestone_states__milestone_id=milestone_id, defect__counts=True)
        .using_db(client)
        .values_list("test_case_id", "defect__number", "defect__state")
    )
    chosen: dict[int, tuple[bool, int]] = {}
    for test_case_id, number, state in rows:
        rank = (DefectState(state) is not DefectState.OPEN, number)
        if test_case_id not in chosen or rank < chosen[test_case_id]:
            chosen[test_case_id] = rank
    return {test_case_id: number for test_case_id, (_, number) in chosen.items()}
