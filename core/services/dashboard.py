"""Reads for the web pages: the overview of milestones and everything a milestone page shows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from core.approvers import approvers_of
from core.catalog import milestone_named, milestone_policy
from core.clock import utcnow
from core.enums import GateStatus, TestStatus
from core.facts import load_facts
from core.gate import DefectFact, FailingTest, TestFact, evaluate
from core.history import HISTORY_DAYS, milestone_history
from core.models import Milestone, Repository, Signoff, Snapshot
from core.page_readings import FailingRow, MilestoneDashboard, Overview, OverviewRow, RepositoryGroup, TrailEntry
from core.readings import MilestoneReading
from core.services.queries import latest_launches, list_milestones, milestone_tags


async def repository_names() -> list[str]:
    """Every repository the service knows, by name: those a person may be allowed to see."""
    return sorted(await Repository.all().values_list("full_name", flat=True))  # type: ignore[arg-type]


async def overview(
    repositories: Sequence[str],
    *,
    repository: str | None = None,
    status: GateStatus | None = None,
    tag: str | None = None,
    now: datetime | None = None,
) -> Overview:
    """The open milestones of `repositories` (those the viewer may see), grouped by repository with
    the worst repository first; `repository`, `status` and `tag` narrow the list."""
    today = (now or utcnow()).date()
    visible = sorted(repositories)
    shown = [name for name in visible if repository is None or name.lower() == repository.lower()]
    everything = await list_milestones(shown) if shown else []
    tags = sorted({own for summary in everything for own in summary.tags}, key=str.casefold)
    summaries = [
        summary
        for summary in everything
        if (status is None or summary.status is status)
        and (tag is None or tag.casefold() in {own.casefold() for own in summary.tags})
    ]
    milestones = {
        (milestone.repository.full_name, milestone.name): milestone
        for milestone in await Milestone.filter(repository__full_name__in=shown).prefetch_related("repository")
    }
    rows: dict[str, list[OverviewRow]] = {}
    for summary in summaries:
        milestone = milestones[(summary.repository, summary.name)]
        history = await milestone_history(milestone.id, today, HISTORY_DAYS)
        metrics = await _latest_metrics(milestone)
        row = OverviewRow(
            summary=summary,
            pass_rates=[point.pass_rate for point in history.days],
            approvals=int(metrics.get("approvals", 0)),
            required_approvals=milestone_policy(milestone).signoff.required_approvals or len(summary.approvers),
        )
        rows.setdefault(summary.repository, []).append(row)
    # Summaries come worst first, so a repository's first row is its worst milestone.
    groups = [RepositoryGroup(name, milestones) for name, milestones in rows.items()]
    return Overview(groups, visible, tags)


async def _latest_metrics(milestone: Milestone) -> dict[str, Any]:
    snapshot = await Snapshot.filter(milestone_id=milestone.id).order_by("-taken_at", "-id").first()
    return dict(snapshot.metrics) if snapshot else {}


async def milestone_dashboard(repository: str, name: str, now: datetime | None = None) -> MilestoneDashboard:
    """The milestone's verdict with its facts, its last 30 days, its latest launches and its sign-off."""
    now = now or utcnow()
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, name)
        await milestone.fetch_related("repository", using_db=client)
        facts = await load_facts(client, milestone)
        approvers = await approvers_of(client, milestone.id, facts.policy)
        rows = await Signoff.filter(milestone=milestone).order_by("created_at", "id").using_db(client)
    reading = MilestoneReading(
        milestone.repository.full_name,
        milestone.name,
        milestone.description,
        facts,
        evaluate(facts, now),
        milestone.id,
        milestone_tags(milestone),
    )
    trail = [
        TrailEntry(
            id=row.id,
            at=row.created_at,
            user_id=row.user_id,
            user_name=row.user_name,
            decision=row.decision.value,
            comment=row.comment,
            via=row.via,
            standing=row.active_user is not None,
        )
        for row in rows
    ]
    standing = {row.user_id: row.decision.value for row in rows if row.active_user is not None}
    return MilestoneDashboard(
        reading=reading,
        failing=failing_rows(
            facts.tests, {failure.name: tuple(failure.defects) for failure in reading.verdict.triage.known}
        ),
        history=await milestone_history(milestone.id, now.date()),
        launches=await latest_launches(milestone),
        approvers=approvers,
        trail=trail,
        standing=standing,
    )


def failing_rows(
    tests: Iterable[TestFact], known: Mapping[str, tuple[DefectFact, ...]] | None = None
) -> list[FailingRow]:
    """Every failing test, the required ones first, untriaged before known ones (with their open
    defects), each with the run where it began failing."""
    known = known or {}
    rows = [
        FailingRow(
            test.required,
            FailingTest(
                test.display_name,
                test.suite or "",
                test.latest,
                test.failing_since,
                test.message,
                known.get(test.display_name, ()),
                test.cause,
            ),
        )
        for test in tests
        if test.latest in (TestStatus.FAILED, TestStatus.ERROR)
    ]
    return sorted(rows, key=lambda row: (not row.required, bool(row.test.known), row.test.name))
