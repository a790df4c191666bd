"""Reading a milestone's facts for the gate: a few narrow queries, no history scans."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from core.approvers import approvers_of
from core.catalog import milestone_policy
from core.clock import utcnow
from core.db import as_datetime, as_moment, fetch, fetch_for_ids, placeholders
from core.enums import Decision, DefectState, GateStatus, Lifecycle, MilestoneState, Severity, TestStatus
from core.gate import (
    DecisionFact,
    DefectFact,
    IncludedFact,
    LaunchRef,
    LaunchSummary,
    LinkFact,
    MilestoneFacts,
    PassingCounts,
    QuarantineFact,
    TestFact,
)
from core.lifecycle import lifecycle_state, today_in
from core.metrics import TrendPoint
from core.models import Milestone, Snapshot
from core.policy import MilestonePolicy
from core.selectors import RequiredSelectors
from core.state import milestone_plan_ids, plan_bits

RECENT_LAUNCHES = 10
TREND_POINTS = 60

# A stored status as read back (NULL: never run).
_STATUSES: dict[str | None, TestStatus | None] = {None: None, **{status.value: status for status in TestStatus}}
_FAILED = (TestStatus.FAILED.value, TestStatus.ERROR.value)
# Tests that can be listed (failing, skipped, not run, flaky, flipping) come one by
# one; steady passing tests only as counts (gate.PassingCounts).
_LISTED = (
    "(mt.latest_status IS NULL OR mt.latest_status <> 'passed' OR mt.flaky = TRUE "
    "OR mt.recent LIKE '%F%' OR mt.recent LIKE '%E%')"
)
_TEST_ROWS = """
SELECT mt.test_case_id, mt.required_by_name, mt.plan_bits, mt.latest_status, mt.previous_status,
       mt.flaky, mt.recent, tc.classname, tc.name, tc.suite, mt.failing_since_id, mt.latest_launch_id
FROM milestone_test mt
JOIN test_case tc ON tc.id = mt.test_case_id
"""
_TESTS = f"{_TEST_ROWS} WHERE mt.milestone_id = ? AND {_LISTED}"
# All the milestone's tests counted by what makes them required, in one pass: the steady passing
# ones are these counts less the listed tests, and the plan bits seen answer `plan:` selectors.
_REQUIRED_COUNTS = """
SELECT required_by_name, plan_bits, COUNT(*) FROM milestone_test
WHERE milestone_id = ? GROUP BY required_by_name, plan_bits
"""
# A failing test's message and cause, from its latest result, read by launch for the failing
# tests among the listed ones: a read of its own went through every test of the milestone
# again (6-8 ms of a 45 ms verdict at 10,000 tests). Its launches (failing since, latest) are
# read apart by id, being few (core.facts._launches).
_FAILURES = "SELECT test_case_id, message, cause FROM test_result WHERE launch_id = ? AND test_case_id {ids}"
# A milestone's defect links in three reads: the repository's counting defects' links, then
# those of their tests that are the milestone's (by id), then those defects (by id). One join of
# the four tables was meant to start from the links, usually few; but PostgreSQL without
# statistics (a new database, or a table a launch has just filled) started from every test of
# the milestone instead: 20-90 ms for 50,000. A defect whose `Affects:` glob links thousands of
# tests makes the second read carry their ids (one array, or on SQLite an IN list up to
# IN_CHUNK ids), as many as the join's rows were.
_LINKS = """
SELECT d.id, d.number, dl.test_case_id FROM defect d JOIN defect_link dl ON dl.defect_id = d.id
WHERE d.repository_id = ? AND d.counts = TRUE
"""
_LINKED_TESTS = """
SELECT mt.test_case_id, tc.classname, tc.name, mt.latest_status, mt.last_run_at
FROM milestone_test mt JOIN test_case tc ON tc.id = mt.test_case_id
WHERE mt.milestone_id = ? AND mt.test_case_id {ids}
"""
# `counts` again: a defect that stopped counting since the first read (another writer) stays out.
_LINKED_DEFECTS = "SELECT number, title, severity, state, url, resolved_at FROM defect WHERE counts = TRUE AND id {ids}"
# Quarantined tests that pass steadily are not among the listed ones: they are read one by one.
_QUARANTINED_PASSING = f"{_TEST_ROWS} WHERE mt.milestone_id = ? AND mt.test_case_id {{ids}}"
_QUARANTINE = """
SELECT q.test_case_id, tc.classname, tc.name, q.source, q.reason, q.added_by, q.added_at, q.expires_on
FROM quarantine q JOIN test_case tc ON tc.id = q.test_case_id
WHERE q.milestone_id = ? AND q.active_test IS NOT NULL
"""


async def load_facts(client: BaseDBAsyncClient, milestone: Milestone) -> MilestoneFacts:
    policy = milestone_policy(milestone)
    approvers = await approvers_of(client, milestone.id, policy)
    selectors = RequiredSelectors.parse(policy.required)
    plan_ids = await milestone_plan_ids(client, milestone.id)
    selected_plans = await _plan_bits_by_name(client, plan_ids, selectors.plans)
    required_mask = sum(selected_plans.values())

    def required(by_name: bool | None, bits: int) -> bool:
        return bool(by_name) or bool(bits & required_mask)

    counts = await fetch(client, _REQUIRED_COUNTS, [milestone.id])
    seen_bits = 0
    for _, bits, _ in counts:
        seen_bits |= bits
    rows = await fetch(client, _TESTS, [milestone.id])
    passing_total = sum(count for _, _, count in counts) - len(rows)
    passing_required = sum(count for by_name, bits, count in counts if required(by_name, bits)) - sum(
        1 for row in rows if required(row[1], row[2])
    )
    quarantine = [
        QuarantineFact(row[0], display_name(row[1], row[2]), row[3], row[4], row[5], as_moment(row[6]), as_date(row[7]))
        for row in await fetch(client, _QUARANTINE, [milestone.id])
    ]
    listed = {row[0] for row in rows}
    unlisted = sorted({entry.test_id for entry in quarantine} - listed)
    if unlisted:
        extra = await fetch_for_ids(client, _QUARANTINED_PASSING, [milestone.id], unlisted)
        rows = [*rows, *extra]
        # They leave the counts of steady passing tests, to be listed as quarantined.
        passing_total -= len(extra)
        passing_required -= sum(1 for row in extra if required(row[1], row[2]))
    failures = await _failures(client, rows)
    launches = await _launches(client, {launch for row in rows if row[0] in failures for launch in row[10:12]})
    no_failure = (None, None)
    tests = []
    for case_id, by_name, bits, latest, previous, flaky, recent, classname, name, suite, since, last in rows:
        message, cause = failures.get(case_id, no_failure)
        if case_id not in failures:
            since = last = None
        tests.append(
            TestFact(
                case_id,
                classname,
                name,
                suite,
                required(by_name, bits),
                _STATUSES[latest],
                _STATUSES[previous],
                bool(flaky),
                recent or "",
                launches.get(since),
                message,
                launches.get(last),
                cause,
            )
        )
    matched = set(milestone.matched_selectors or [])
    links, linked_defects, resolved_at = await _links(client, milestone)
    start = policy.start or milestone.start_date
    return MilestoneFacts(
        name=milestone.name,
        policy=policy,
        target_date=milestone.target_date,
        tests=tests,
        passing=PassingCounts(passing_total, passing_required),
        unmatched_selectors=[f"plan:{name}" for name in selectors.plans if not selected_plans.get(name, 0) & seen_bits]
        + [selector for selector in selectors.globs if selector not in matched],
        missing_exact_ids=[selector for selector in selectors.exact if selector not in matched],
        defects=await _defects(client, milestone.id),
        approvers=approvers.users,
        unresolved_approvers=approvers.unresolved,
        decisions=await _decisions(client, milestone.id),
        recent_launches=await _recent_launches(client, policy, plan_ids),
        trend=await _trend(client, milestone.id),
        links=links,
        linked_defects=linked_defects,
        resolved_at=resolved_at,
        quarantine=quarantine,
        start_date=start,
        zone=team_zone(policy),
        closed=milestone.state is MilestoneState.CLOSED,
        included=await _included(client, milestone, policy),
        resolved_before_start=await _resolved_before(client, milestone.id, start),
    )


async def _links(
    client: BaseDBAsyncClient, milestone: Milestone
) -> tuple[list[LinkFact], list[DefectFact], dict[int, datetime]]:
    """The milestone's tests that counting defects say they break (a fact per link), those
    defects, and when the resolved ones were resolved."""
    links = await fetch(client, _LINKS, [milestone.repository_id])
    tests = {
        row[0]: row[1:]
        for row in await fetch_for_ids(client, _LINKED_TESTS, [milestone.id], sorted({row[2] for row in links}))
    }
    facts: list[LinkFact] = []
    defect_ids: set[int] = set()
    for defect_id, number, test_id in links:
        if (test := tests.get(test_id)) is not None:
            facts.append(
                LinkFact(number, test_id, display_name(test[0], test[1]), _STATUSES[test[2]], as_datetime(test[3]))
            )
            defect_ids.add(defect_id)
    rows = sorted(await fetch_for_ids(client, _LINKED_DEFECTS, [], sorted(defect_ids)), key=lambda row: row[0])
    defects = [_defect_fact(row) for row in rows]
    resolved_at = {row[0]: resolved for row in rows if (resolved := as_datetime(row[5])) is not None}
    return facts, defects, resolved_at


def _defect_fact(row: Sequence[Any]) -> DefectFact:
    """A defect from its row's number, title, severity, state and url, in that order."""
    return DefectFact(row[0], row[1], Severity(row[2]), DefectState(row[3]), row[4])


def display_name(classname: str | None, name: str | None) -> str:
    return f"{classname}.{name}" if classname else (name or "")


def as_date(value: Any) -> date | None:
    """SQLite hands raw-query dates back as ISO text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(value)


def lifecycle_today(milestone: Milestone, policy: MilestonePolicy, status: GateStatus, now: datetime) -> Lifecycle:
    """A stored milestone's lifecycle at `now`, from its dates in the team's zone and the gate
    status its latest snapshot left."""
    return lifecycle_state(
        today=today_in(team_zone(policy), now),
        start=policy.start or milestone.start_date,
        target=milestone.target_date,
        completed=status is GateStatus.COMPLETE,
        closed=milestone.state is MilestoneState.CLOSED,
    )


def team_zone(policy: MilestonePolicy) -> str:
    """Where the team's "today" is: the policy's zone, else the TZ setting."""
    if policy.timezone:
        return policy.timezone
    from core.settings import get_settings

    return get_settings().tz


async def _included(client: BaseDBAsyncClient, milestone: Milestone, policy: MilestonePolicy) -> list[IncludedFact]:
    """The milestones this one rolls up, with the gate status their latest snapshots left: a
    child's own evaluation is what changes that, and it re-evaluates this one (services.changes)."""
    if not policy.includes:
        return []
    siblings = await Milestone.filter(repository_id=milestone.repository_id).exclude(id=milestone.id).using_db(client)
    included = []
    for child in siblings:
        if not policy.includes_name(milestone.name, child.name):
            continue
        snapshot = await Snapshot.filter(milestone_id=child.id).order_by("-id").using_db(client).first()
        status = snapshot.status if snapshot else GateStatus.NO_DATA
        completion = snapshot.metrics.get("completion") if snapshot else None
        # The stored lifecycle changes only when the child changes; a start or target date
        # passing moves it too, so it is read from the child's dates as of today.
        lifecycle = lifecycle_today(child, milestone_policy(child), status, utcnow())
        included.append(IncludedFact(child.name, status, lifecycle, completion))
    return included


async def _failures(client: BaseDBAsyncClient, rows: list[Any]) -> dict[int, tuple[str | None, str | None]]:
    """The message and cause of each failing test among `rows` (of _TEST_ROWS), from its latest result."""
    by_launch: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row[3] in _FAILED:
            by_launch[row[11]].append(row[0])
    failures: dict[int, tuple[str | None, str | None]] = dict.fromkeys(
        (test for tests in by_launch.values() for test in tests), (None, None)
    )
    for launch, tests in by_launch.items():
        for test, message, cause in await fetch_for_ids(client, _FAILURES, [launch], sorted(tests)):
            failures[test] = (message, cause)
    return failures


async def _launches(client: BaseDBAsyncClient, ids: set[int | None]) -> dict[int | None, LaunchRef]:
    known = sorted(launch for launch in ids if launch is not None)
    if not known:
        return {}
    rows = await fetch(
        client, f"SELECT id, commit_sha, url, finished_at FROM launch WHERE id IN ({placeholders(len(known))})", known
    )
    return {row[0]: LaunchRef(row[0], row[1], row[2], as_datetime(row[3])) for row in rows}


async def _plan_bits_by_name(client: BaseDBAsyncClient, plan_ids: list[int], names: tuple[str, ...]) -> dict[str, int]:
    """The plan_bits bit of each named plan the milestone includes."""
    if not names or not plan_ids:
        return {}
    rows = await fetch(client, f"SELECT id, name FROM test_plan WHERE id IN ({placeholders(len(plan_ids))})", plan_ids)
    bits = plan_bits(plan_ids)
    return {row[1]: bits[row[0]] for row in rows if row[1] in names}


async def _defects(client: BaseDBAsyncClient, milestone_id: int) -> list[DefectFact]:
    rows = await fetch(
        client,
        "SELECT number, title, severity, state, url FROM defect WHERE milestone_id = ? AND counts = TRUE",
        [milestone_id],
    )
    return [_defect_fact(row) for row in rows]


async def _resolved_before(client: BaseDBAsyncClient, milestone_id: int, start: date | None) -> frozenset[int]:
    if start is None:
        return frozenset()
    rows = await fetch(
        client,
        "SELECT number, resolved_at FROM defect WHERE milestone_id = ? AND counts = TRUE AND resolved_at IS NOT NULL",
        [milestone_id],
    )
    return frozenset(
        row[0] for row in rows if (resolved := as_datetime(row[1])) is not None and resolved.date() < start
    )


async def _decisions(client: BaseDBAsyncClient, milestone_id: int) -> list[DecisionFact]:
    rows = await fetch(
        client,
        "SELECT user_id, decision, created_at, comment, requested_by FROM signoff "
        "WHERE milestone_id = ? AND valid = TRUE ORDER BY created_at, id",
        [milestone_id],
    )
    return [DecisionFact(row[0], Decision(row[1]), as_moment(row[2]), row[3], row[4]) for row in rows]


async def _recent_launches(
    client: BaseDBAsyncClient, policy: MilestonePolicy, plan_ids: list[int]
) -> list[LaunchSummary]:
    if not plan_ids:
        return []
    rows = await fetch(
        client,
        f"SELECT finished_at, passed, failed, errors, branch FROM launch "
        f"WHERE plan_id IN ({placeholders(len(plan_ids))}) AND superseded = FALSE ORDER BY finished_at DESC, id DESC LIMIT ?",
        [*plan_ids, RECENT_LAUNCHES * 5],
    )
    matching = [row for row in rows if policy.branch_matches(row[4])][:RECENT_LAUNCHES]
    return [LaunchSummary(as_moment(row[0]), row[1], row[2], row[3]) for row in reversed(matching)]


async def _trend(client: BaseDBAsyncClient, milestone_id: int) -> list[TrendPoint]:
    rows = await fetch(
        client,
        "SELECT taken_at, metrics FROM snapshot WHERE milestone_id = ? ORDER BY taken_at DESC, id DESC LIMIT ?",
        [milestone_id, TREND_POINTS],
    )
    points = []
    for taken_at, metrics in reversed(rows):
        values = metrics if isinstance(metrics, dict) else json.loads(metrics)
        points.append(TrendPoint(as_moment(taken_at), values.get("pass_rate"), values.get("open_blocking", 0)))
    return points
