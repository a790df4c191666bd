"""Reading a milestone's facts for the gate: a few narrow queries, no history scans."""

from __future__ import annotations

import json

from tortoise.backends.base.client import BaseDBAsyncClient

from core.catalog import milestone_policy
from core.db import as_datetime, fetch
from core.enums import Decision, DefectState, Severity, TestStatus
from core.gate import DecisionFact, DefectFact, LaunchRef, LaunchSummary, MilestoneFacts, TestFact
from core.metrics import TrendPoint
from core.models import Milestone
from core.selectors import RequiredSelectors
from core.state import milestone_plan_ids, plan_bits

RECENT_LAUNCHES = 10
TREND_POINTS = 60

_TESTS = """
SELECT mt.test_case_id, tc.classname, tc.name, tc.suite, mt.required_by_name, mt.plan_bits,
       mt.latest_status, mt.previous_status, mt.flaky, mt.recent,
       fl.id, fl.commit_sha, fl.url, fl.finished_at, r.message
FROM milestone_test mt
JOIN test_case tc ON tc.id = mt.test_case_id
LEFT JOIN launch fl ON fl.id = mt.failing_since_id
LEFT JOIN test_result r ON r.launch_id = mt.latest_launch_id AND r.test_case_id = mt.test_case_id
    AND mt.latest_status IN ('failed', 'error')
WHERE mt.milestone_id = ?
"""


async def load_facts(client: BaseDBAsyncClient, milestone: Milestone) -> MilestoneFacts:
    policy = milestone_policy(milestone)
    selectors = RequiredSelectors.parse(policy.required)
    plan_ids = await milestone_plan_ids(client, milestone.id)
    selected_plans = await _plan_bits_by_name(client, plan_ids, selectors.plans)
    required_mask = sum(selected_plans.values())
    seen_bits = 0
    statuses = {status.value: status for status in TestStatus}
    tests = []
    for row in await fetch(client, _TESTS, [milestone.id]):
        seen_bits |= row[5]
        since = LaunchRef(row[10], row[11], row[12], as_datetime(row[13])) if row[10] is not None else None
        tests.append(
            TestFact(
                id=row[0],
                classname=row[1],
                name=row[2],
                suite=row[3],
                required=bool(row[4]) or bool(row[5] & required_mask),
                latest=statuses.get(row[6]),
                previous=statuses.get(row[7]),
                flaky=bool(row[8]),
                recent=row[9] or "",
                failing_since=since,
                message=row[14],
            )
        )
    matched = set(milestone.matched_selectors or [])
    return MilestoneFacts(
        name=milestone.name,
        policy=policy,
        target_date=milestone.target_date,
        tests=tests,
        unmatched_selectors=[f"plan:{name}" for name in selectors.plans if not selected_plans.get(name, 0) & seen_bits]
        + [selector for selector in selectors.globs if selector not in matched],
        missing_exact_ids=[selector for selector in selectors.exact if selector not in matched],
        defects=await _defects(client, milestone.id),
        approvers=policy.signoff.approvers,
        decisions=await _decisions(client, milestone.id),
        recent_launches=await _recent_launches(client, milestone, plan_ids),
        trend=await _trend(client, milestone.id),
    )


async def _plan_bits_by_name(client: BaseDBAsyncClient, plan_ids: list[int], names: tuple[str, ...]) -> dict[str, int]:
    """The plan_bits bit of each named plan the milestone includes."""
    if not names or not plan_ids:
        return {}
    marks = ", ".join("?" * len(plan_ids))
    rows = await fetch(client, f"SELECT id, name FROM test_plan WHERE id IN ({marks})", plan_ids)
    bits = plan_bits(plan_ids)
    return {row[1]: bits[row[0]] for row in rows if row[1] in names}


async def _defects(client: BaseDBAsyncClient, milestone_id: int) -> list[DefectFact]:
    rows = await fetch(
        client,
        "SELECT number, title, severity, state, url FROM defect WHERE milestone_id = ? AND counts = TRUE",
        [milestone_id],
    )
    return [DefectFact(row[0], row[1], Severity(row[2]), DefectState(row[3]), row[4]) for row in rows]


async def _decisions(client: BaseDBAsyncClient, milestone_id: int) -> list[DecisionFact]:
    rows = await fetch(
        client,
        "SELECT user_id, decision, created_at, comment, requested_by FROM signoff "
        "WHERE milestone_id = ? AND valid = TRUE ORDER BY created_at, id",
        [milestone_id],
    )
    return [DecisionFact(row[0], Decision(row[1]), as_datetime(row[2]), row[3], row[4]) for row in rows]


async def _recent_launches(client: BaseDBAsyncClient, milestone: Milestone, plan_ids: list[int]) -> list[LaunchSummary]:
    if not plan_ids:
        return []
    policy = milestone_policy(milestone)
    marks = ", ".join("?" * len(plan_ids))
    rows = await fetch(
        client,
        f"SELECT finished_at, passed, failed, errors, branch FROM launch "
        f"WHERE plan_id IN ({marks}) AND superseded = FALSE ORDER BY finished_at DESC, id DESC LIMIT ?",
        [*plan_ids, RECENT_LAUNCHES * 5],
    )
    matching = [row for row in rows if policy.branch_matches(row[4])][:RECENT_LAUNCHES]
    return [LaunchSummary(as_datetime(row[0]), row[1], row[2], row[3]) for row in reversed(matching)]


async def _trend(client: BaseDBAsyncClient, milestone_id: int) -> list[TrendPoint]:
    rows = await fetch(
        client,
        "SELECT taken_at, metrics FROM snapshot WHERE milestone_id = ? ORDER BY taken_at DESC, id DESC LIMIT ?",
        [milestone_id, TREND_POINTS],
    )
    points = []
    for taken_at, metrics in reversed(rows):
        values = metrics if isinstance(metrics, dict) else json.loads(metrics)
        points.append(TrendPoint(as_datetime(taken_at), values.get("pass_rate"), values.get("open_blocking", 0)))
    return points
