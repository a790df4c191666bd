"""Per milestone and test, the latest result, kept current as launches arrive.

One set-based statement per launch and milestone moves each test's latest result
to `previous` and records the new one, so a status query reads one row per test
and never the result history. Rebuilding (after a policy change, a re-run attempt
or a launch that arrives out of order) replays the launches through the same
statement, so there is one definition of how a result changes the state. A launch that
finished before launches already applied recomputes only the tests whose recent history it
changes, the same way (`apply_late_launch`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient

from core.db import IN_CHUNK, among, execute, execute_for_ids, fetch, fetch_for_ids, placeholders
from core.metrics import RECENT_RUNS
from core.models import Milestone
from core.policy import MilestonePolicy
from core.selectors import RequiredSelectors

FAILING = "('failed', 'error')"
EXECUTED = "('passed', 'failed', 'error')"
RECENT_LENGTH = RECENT_RUNS
# A launch's results replace the state only if at least as new as what it holds.
NEWER = "(milestone_test.last_run_at IS NULL OR excluded.last_run_at >= milestone_test.last_run_at)"


def _when_newer(column: str) -> str:
    return f"{column} = CASE WHEN {NEWER} THEN excluded.{column} ELSE milestone_test.{column} END"


# `{required}` is what a new row's required_by_name starts as: NULL, matched later by
# refresh_required, or the match worked out beforehand (apply_launch). A row already there
# keeps its own.
_APPLY_RESULTS = f"""
INSERT INTO milestone_test (
    milestone_id, test_case_id, required_by_name, plan_bits, latest_status, latest_launch_id,
    latest_commit, last_run_at, previous_status, previous_commit, failing_since_id, flaky, recent, flaky_recent
)
SELECT CAST(? AS INTEGER), r.test_case_id, {{required}}, CAST(? AS BIGINT), r.status, l.id,
       l.commit_sha, l.finished_at, NULL, NULL,
       CASE WHEN r.status IN {FAILING} THEN l.id END,
       r.flaky,
       CASE r.status WHEN 'passed' THEN 'P' WHEN 'failed' THEN 'F' WHEN 'error' THEN 'E' ELSE 'S' END,
       CASE WHEN r.flaky THEN 'Y' ELSE 'N' END
FROM test_result r JOIN launch l ON l.id = r.launch_id
WHERE r.launch_id = ?
ON CONFLICT (milestone_id, test_case_id) DO UPDATE SET
    plan_bits = milestone_test.plan_bits | excluded.plan_bits,
    {_when_newer("latest_status")},
    {_when_newer("latest_launch_id")},
    {_when_newer("latest_commit")},
    {_when_newer("last_run_at")},
    previous_status = CASE WHEN {NEWER} THEN milestone_test.latest_status
                           ELSE milestone_test.previous_status END,
    previous_commit = CASE WHEN {NEWER} THEN milestone_test.latest_commit
                           ELSE milestone_test.previous_commit END,
    failing_since_id = CASE
        WHEN NOT {NEWER} THEN milestone_test.failing_since_id
        WHEN excluded.latest_status = 'passed' THEN NULL
        -- A skipped run neither fixes nor starts a failure: the streak goes on.
        WHEN excluded.latest_status = 'skipped' THEN milestone_test.failing_since_id
        ELSE COALESCE(milestone_test.failing_since_id, excluded.failing_since_id) END,
    flaky = CASE WHEN {NEWER} THEN COALESCE(
        excluded.flaky OR (
            milestone_test.latest_commit = excluded.latest_commit
            AND milestone_test.latest_status IN {EXECUTED}
            AND excluded.latest_status IN {EXECUTED}
            AND (milestone_test.latest_status = 'passed') <> (excluded.latest_status = 'passed')),
        excluded.flaky)
        ELSE milestone_test.flaky END,
    recent = CASE WHEN {NEWER} THEN substr(excluded.recent || milestone_test.recent, 1, {RECENT_LENGTH})
                  ELSE milestone_test.recent END,
    -- Flaky in this run: pass and fail within it, or a flip from the run before.
    flaky_recent = CASE WHEN {NEWER} THEN substr(
        CASE WHEN excluded.flaky_recent = 'Y' OR (
            milestone_test.latest_status IN {EXECUTED}
            AND excluded.latest_status IN {EXECUTED}
            AND (milestone_test.latest_status = 'passed') <> (excluded.latest_status = 'passed'))
        THEN 'Y' ELSE 'N' END || milestone_test.flaky_recent, 1, {RECENT_LENGTH})
        ELSE milestone_test.flaky_recent END
"""
APPLY_RESULTS = _APPLY_RESULTS.format(required="NULL")

# A launch on a branch the milestone does not track still tells which tests its plans
# hold: those become known (and, until they run on the milestone's branches, untested).
_APPLY_MEMBERSHIP = """
INSERT INTO milestone_test (milestone_id, test_case_id, required_by_name, plan_bits, flaky, recent)
SELECT CAST(? AS INTEGER), r.test_case_id, {required}, CAST(? AS BIGINT), FALSE, ''
FROM test_result r
WHERE r.launch_id = ?
ON CONFLICT (milestone_id, test_case_id) DO UPDATE SET
    plan_bits = milestone_test.plan_bits | excluded.plan_bits
"""
APPLY_MEMBERSHIP = _APPLY_MEMBERSHIP.format(required="NULL")


class LaunchRow(NamedTuple):
    id: int
    plan_id: int
    branch: str | None


MAX_PLANS = 63  # plan_bits is a signed 64-bit integer


class TooManyPlans(ValueError):
    pass


def plan_bits(plan_ids: Sequence[int]) -> dict[int, int]:
    """A bit per plan of the milestone; new plans have higher ids, so bits stay put."""
    if len(plan_ids) > MAX_PLANS:
        raise TooManyPlans(f"a milestone can include at most {MAX_PLANS} test plans; name its plans in the policy file")
    return {plan_id: 1 << slot for slot, plan_id in enumerate(sorted(plan_ids))}


async def milestone_plan_ids(client: BaseDBAsyncClient, milestone_id: int) -> list[int]:
    rows = await fetch(client, "SELECT testplan_id FROM milestone_plan WHERE milestone_id = ?", [milestone_id])
    return sorted(row[0] for row in rows)


class NamedTest(NamedTuple):
    """A test as the required selectors match it, by the id of its row (of test_case or milestone_test)."""

    id: int
    classname: str
    name: str
    file: str | None


async def apply_launch(
    client: BaseDBAsyncClient,
    milestone: Milestone,
    policy: MilestonePolicy,
    launch: LaunchRow,
    bits: dict[int, int],
    new_case_ids: Sequence[int] = (),
) -> None:
    """Apply a launch in order. The rows of the test cases it brought new to the repository
    (`new_case_ids`) are inserted already matched against the required selectors: marking them
    after the insert wrote each row twice (on PostgreSQL, marking 50,000 new rows took nearly
    as long as inserting them)."""
    required, required_params = "NULL", []
    if new_case_ids:
        selectors = RequiredSelectors.parse(policy.required)
        hits: list[int] = []
        if selectors.by_name:
            # As stored: a launch bringing the same test at the same time may have stored it first.
            rows = await fetch_for_ids(
                client, "SELECT id, classname, name, file FROM test_case WHERE id {ids}", [], new_case_ids
            )
            hits, matched = _match(selectors, (NamedTest(*row) for row in rows))
            del rows
            await _record_matched(client, milestone, matched)
        is_hit, hit_ids = among(client, hits)
        is_new, new_ids = among(client, new_case_ids)
        required = f"CASE WHEN r.test_case_id {is_hit} THEN TRUE WHEN r.test_case_id {is_new} THEN FALSE END"
        required_params = [hit_ids, new_ids]
    statement = _APPLY_RESULTS if policy.branch_matches(launch.branch) else _APPLY_MEMBERSHIP
    await execute(
        client,
        statement.format(required=required),
        [milestone.id, *required_params, bits[launch.plan_id], launch.id],
    )


def _restricted(query: str, tests: str) -> str:
    """`query` (APPLY_RESULTS or APPLY_MEMBERSHIP) for the tests `tests` selects only."""
    return query.replace("WHERE r.launch_id = ?", f"WHERE r.launch_id = ? AND r.test_case_id IN ({tests})")


async def apply_late_launch(
    client: BaseDBAsyncClient,
    milestone: Milestone,
    policy: MilestonePolicy,
    launch: LaunchRow,
    finished_at: Any,
    bits: dict[int, int],
    test_ids: Sequence[int],
) -> None:
    """Apply a launch that finished before launches already applied, recomputing only what it changes.

    A test whose RECENT_LENGTH latest runs are all newer than the launch, one of them a pass,
    keeps its state: the launch falls outside its recent runs, before its previous result and
    before any failure streak. Only its plan bit is added. Every other test of the launch is
    replayed from all the milestone's launches, restricted to those tests.
    `finished_at` is the launch's, as a query parameter (`db_datetime`); `test_ids` its test
    cases, as the caller stored them (read back, 10,000 of them took 23 ms on SQLite: the pages
    just written had left its cache).
    """
    if not policy.branch_matches(launch.branch):
        # Only plan membership, which does not depend on order.
        await apply_launch(client, milestone, policy, launch, bits)
        return
    plan_ids = sorted(bits)
    newer = await fetch(
        client,
        f"SELECT id, branch, tests FROM launch WHERE plan_id IN ({placeholders(len(plan_ids))}) "
        "AND superseded = FALSE AND id <> ? AND finished_at > ? ORDER BY finished_at DESC, id DESC",
        [*plan_ids, launch.id, finished_at],
    )
    window = [(row[0], row[2]) for row in newer if policy.branch_matches(row[1])][:RECENT_LENGTH]
    launch_tests = set(test_ids)
    of_launch, launch_test_ids = among(client, test_ids)
    settled: set[int] = set()
    if len(window) == RECENT_LENGTH:
        in_window = f"launch_id IN ({placeholders(RECENT_LENGTH)})"
        window_ids = [launch_id for launch_id, _ in window]
        # A launch about as large as those of the window: reading the window's tests and the
        # milestone's whole state in order, then keeping this launch's tests here, costs less than
        # looking each of its tests up, which both engines do without statistics. At 10,000 tests,
        # on SQLite the two reads took 22 and 7 ms against 40 and 14; on PostgreSQL the state's
        # read 4-5 ms against 12-23.
        if sum(tests for _, tests in window) <= 2 * len(launch_tests) * RECENT_LENGTH:
            only, only_params = "", []
        else:
            only, only_params = f"AND test_case_id {of_launch}", [launch_test_ids]
        in_every = await fetch(
            client,
            f"SELECT test_case_id FROM test_result WHERE {in_window} {only} GROUP BY test_case_id HAVING COUNT(*) = ?",
            [*window_ids, *only_params, RECENT_LENGTH],
        )
        passed_lately = await fetch(
            client,
            f"SELECT test_case_id FROM milestone_test WHERE milestone_id = ? AND recent LIKE '%P%' {only}",
            [milestone.id, *only_params],
        )
        settled = launch_tests & {row[0] for row in in_every} & {row[0] for row in passed_lately}
    # Only rows still without the plan's bit: a row rewritten to its own value still costs a write
    # (on PostgreSQL a new row version), and the plan is usually known already.
    bit = bits[launch.plan_id]
    await execute(
        client,
        "UPDATE milestone_test SET plan_bits = plan_bits | CAST(? AS BIGINT) WHERE milestone_id = ? "
        f"AND (plan_bits & CAST(? AS BIGINT)) = 0 AND test_case_id {of_launch}",
        [bit, milestone.id, bit, launch_test_ids],
    )
    replayed = sorted(launch_tests - settled)
    if not replayed:
        return
    history = await fetch(
        client,
        f"SELECT id, plan_id, branch FROM launch WHERE plan_id IN ({placeholders(len(plan_ids))}) "
        "AND superseded = FALSE ORDER BY finished_at, id",
        plan_ids,
    )
    for start in range(0, len(replayed), IN_CHUNK):
        chunk = replayed[start : start + IN_CHUNK]
        tests = placeholders(len(chunk))
        await execute(
            client,
            f"DELETE FROM milestone_test WHERE milestone_id = ? AND test_case_id IN ({tests})",
            [milestone.id, *chunk],
        )
        for row in history:
            query = APPLY_RESULTS if policy.branch_matches(row[2]) else APPLY_MEMBERSHIP
            await execute(client, _restricted(query, tests), [milestone.id, bits[row[1]], row[0], *chunk])


async def refresh_required(
    client: BaseDBAsyncClient, milestone: Milestone, policy: MilestonePolicy, *, everything: bool = False
) -> None:
    """Match tests not matched yet (or all of them) against the name and glob selectors."""
    selectors = RequiredSelectors.parse(policy.required)
    if everything:
        await execute(
            client, "UPDATE milestone_test SET required_by_name = NULL WHERE milestone_id = ?", [milestone.id]
        )
    matched: set[str] = set()
    if selectors.by_name:
        rows = await fetch(
            client,
            "SELECT mt.id, tc.classname, tc.name, tc.file FROM milestone_test mt "
            "JOIN test_case tc ON tc.id = mt.test_case_id "
            "WHERE mt.milestone_id = ? AND mt.required_by_name IS NULL",
            [milestone.id],
        )
        hits, matched = _match(selectors, (NamedTest(*row) for row in rows))
        await execute_for_ids(client, "UPDATE milestone_test SET required_by_name = TRUE WHERE id {ids}", [], hits)
    if everything:
        milestone.matched_selectors = sorted(matched)
        await milestone.save(using_db=client, update_fields=["matched_selectors"])
    else:
        await _record_matched(client, milestone, matched)
    await execute(
        client,
        "UPDATE milestone_test SET required_by_name = FALSE WHERE milestone_id = ? AND required_by_name IS NULL",
        [milestone.id],
    )


def _match(selectors: RequiredSelectors, tests: Iterable[NamedTest]) -> tuple[list[int], set[str]]:
    """The ids of `tests` the name and glob selectors require, and the selectors that matched."""
    matcher = selectors.name_matcher()
    return [test.id for test in tests if matcher(test.classname, test.name, test.file)], matcher.matched


async def _record_matched(client: BaseDBAsyncClient, milestone: Milestone, matched: set[str]) -> None:
    """Remember which selectors matched a test (the gate warns of those that never did)."""
    recorded = sorted(set(milestone.matched_selectors) | matched)
    if recorded != milestone.matched_selectors:
        milestone.matched_selectors = recorded
        await milestone.save(using_db=client, update_fields=["matched_selectors"])


async def rebuild(client: BaseDBAsyncClient, milestone: Milestone, policy: MilestonePolicy) -> None:
    """Recompute the milestone's test state from every launch that still counts."""
    await execute(client, "DELETE FROM milestone_test WHERE milestone_id = ?", [milestone.id])
    plan_ids = await milestone_plan_ids(client, milestone.id)
    if plan_ids:
        rows = await fetch(
            client,
            f"SELECT id, plan_id, branch FROM launch WHERE plan_id IN ({placeholders(len(plan_ids))}) AND superseded = FALSE "
            "ORDER BY finished_at, id",
            plan_ids,
        )
        bits = plan_bits(plan_ids)
        for row in rows:
            await apply_launch(client, milestone, policy, LaunchRow(row[0], row[1], row[2]), bits)
    await refresh_required(client, milestone, policy, everything=True)
