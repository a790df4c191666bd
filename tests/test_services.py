"""The service layer against a real database (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from core import outbox, services, state
from core.catalog import NotFound, await_first_writer, find_repository, lock_milestones, milestone_policy
from core.enums import (
    CriterionResult,
    Decision,
    DefectState,
    GateStatus,
    Lifecycle,
    MilestoneState,
    Severity,
    TestStatus,
)
from core.facts import load_facts
from core.gate import CoverageNumbers
from core.ingest import LaunchSource
from core.junit import parse_reports, parse_stream
from core.models import (
    Approver,
    Defect,
    Launch,
    Milestone,
    MilestoneTest,
    PullRequest,
    Signoff,
    Snapshot,
    TestCase,
    TestPlan,
    TestResult,
    UserGroup,
)
from tests.conftest import JUNIT

REPO = "acme/shop"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)

POLICY = """
plans:
  smoke: {workflow: ci.yml}
  regression: {workflow: nightly.yml}
milestones:
  "v2.0":
    plans: [smoke, regression]
    branches: ["release/*"]
    required: ["plan:smoke", "com.acme.checkout.*", "com.acme.Missing.test"]
    max_open_defects: {critical: 0, high: 0}
    require_verified: true
    signoff: {approvers: [U1, U2], quorum: 2}
  default:
    plans: [smoke]
"""


def report(*cases: tuple[str, str, str]):
    """cases: (classname, name, outcome) with outcome passed / failed / error / skipped."""
    body = []
    for classname, name, outcome in cases:
        child = {"passed": "", "failed": "<failure message='no'/>", "error": "<error/>", "skipped": "<skipped/>"}[
            outcome
        ]
        body.append(f'<testcase classname="{classname}" name="{name}">{child}</testcase>')
    xml = f'<testsuites><testsuite name="suite">{"".join(body)}</testsuite></testsuites>'
    return parse_stream(io.BytesIO(xml.encode()), "report.xml")


async def launch(
    source: str,
    *cases,
    plan: str = "smoke",
    branch: str = "release/2.0",
    attempt: int = 1,
    at: datetime | None = None,
    commit: str | None = None,
):
    return await services.record_launch(
        report(*cases),
        LaunchSource(
            REPO,
            plan,
            source,
            attempt=attempt,
            branch=branch,
            commit_sha=commit or f"sha-{source}",
            finished_at=at or T0,
        ),
    )


async def setup_policy() -> None:
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok, load.errors


async def verdict():
    return await services.get_verdict(REPO, "v2.0")


async def states() -> dict[str, MilestoneTest]:
    rows = await MilestoneTest.filter(milestone__name="v2.0").prefetch_related("test_case", "failing_since")
    return {f"{row.test_case.classname}.{row.test_case.name}": row for row in rows}


# Launches --------------------------------------------------------------------


async def test_a_launch_is_stored_with_its_counts(db: str) -> None:
    outcome = await services.record_launch(
        parse_reports([JUNIT / "python-xunit-unittest.xml"]),
        LaunchSource(REPO, "unit", "run-1", commit_sha="abc", branch="main"),
    )
    assert outcome.created and not outcome.superseded
    assert outcome.counts == {"files": 1, "tests": 8, "passed": 4, "failed": 1, "errors": 1, "skipped": 2, "flaky": 0}
    assert await TestResult.filter(launch_id=outcome.launch_id).count() == 8
    assert await TestCase.all().count() == 8
    stored = await TestResult.get(launch_id=outcome.launch_id, test_case__name="test_error")
    assert (stored.status, stored.message) == (TestStatus.ERROR, "error")


async def test_the_same_source_and_attempt_twice_changes_nothing(db: str) -> None:
    await setup_policy()
    first = await launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"))
    snapshots = await Snapshot.all().count()
    again = await launch("run-1", ("com.acme.checkout.Pay", "t1", "failed"))
    assert (again.created, again.launch_id) == (False, first.launch_id)
    assert await Launch.all().count() == 1
    assert await TestResult.all().count() == 1
    assert await Snapshot.all().count() == snapshots
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is TestStatus.PASSED


async def test_concurrent_deliveries_of_one_launch_store_it_once(db: str) -> None:
    await setup_policy()
    outcomes = await asyncio.gather(*(launch("run-1", ("com.acme.checkout.Pay", "t1", "passed")) for _ in range(4)))
    assert sorted(outcome.created for outcome in outcomes) == [False, False, False, True]
    assert await Launch.all().count() == 1


async def test_launches_of_two_plans_bringing_the_same_new_tests_at_once_both_store_them(db: str) -> None:
    # Two plans' launches do not wait for each other; their new tests, listed in opposite
    # orders, once took the unique index's locks in a cycle on PostgreSQL (a deadlock).
    def report(round_number: int, numbers: range) -> bytes:
        cases = "".join(f'<testcase classname="com.acme.R{round_number}" name="t{number}"/>' for number in numbers)
        return f'<testsuites><testsuite name="shared">{cases}</testsuite></testsuites>'.encode()

    for round_number in range(4):
        first = parse_stream(io.BytesIO(report(round_number, range(0, 3000))), "first.xml")
        second = parse_stream(io.BytesIO(report(round_number, range(4500, 1500, -1))), "second.xml")
        outcomes = await asyncio.gather(
            services.record_launch(first, LaunchSource(REPO, "unit", f"unit-{round_number}")),
            services.record_launch(second, LaunchSource(REPO, "e2e", f"e2e-{round_number}")),
        )
        assert [outcome.counts["tests"] for outcome in outcomes] == [3000, 3000]
    assert await Launch.all().count() == 8
    assert await TestCase.filter(classname__startswith="com.acme.R").count() == 4 * 4501


async def test_concurrent_attempts_leave_only_the_highest_counting(db: str) -> None:
    await setup_policy()
    await asyncio.gather(
        launch("run-1", ("com.acme.checkout.Pay", "t1", "failed"), attempt=1),
        launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"), attempt=2),
    )
    assert sorted(await Launch.all().values_list("attempt", "superseded")) == [(1, True), (2, False)]


async def test_a_launch_is_stored_whole_or_not_at_all(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await setup_policy()

    async def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(state, "apply_launch", crash)
    with pytest.raises(RuntimeError):
        await launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"))
    assert await Launch.all().count() == 0
    assert await TestResult.all().count() == 0
    assert await TestCase.all().count() == 0


async def test_a_higher_attempt_replaces_the_earlier_one(db: str) -> None:
    await setup_policy()
    await launch("run-1", ("com.acme.checkout.Pay", "t1", "failed"), ("com.acme.checkout.Pay", "t2", "passed"))
    assert (await verdict()).status is GateStatus.BLOCKED
    rerun = await launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"), attempt=2, at=T0 + timedelta(minutes=30))
    assert rerun.created and not rerun.superseded
    assert await Launch.filter(attempt=1, superseded=True).count() == 1
    rows = await states()
    # The first attempt no longer counts at all: t1 passed with no earlier result, and t2,
    # seen only in the superseded attempt, is not part of the milestone (a re-run of the
    # failed jobs alone must not turn the other jobs' tests into untested ones).
    assert (rows["com.acme.checkout.Pay.t1"].latest_status, rows["com.acme.checkout.Pay.t1"].previous_status) == (
        TestStatus.PASSED,
        None,
    )
    assert "com.acme.checkout.Pay.t2" not in rows
    assert (await verdict()).criteria.tests.result is CriterionResult.MET


async def test_a_failure_a_report_declares_without_listing_cases_fails_the_launch_and_the_gate(db: str) -> None:
    await setup_policy()
    xml = '<testsuite name="com.acme.checkout.Pay" tests="6" failures="1" skipped="2"></testsuite>'
    outcome = await services.record_launch(
        parse_stream(io.BytesIO(xml.encode()), "unit.xml"),
        LaunchSource(REPO, "smoke", "run-1", branch="release/2.0", commit_sha="abc", finished_at=T0),
    )
    assert outcome.counts == {"files": 1, "tests": 6, "passed": 3, "failed": 1, "errors": 0, "skipped": 2, "flaky": 0}
    stored = await Launch.get(id=outcome.launch_id)
    assert [warning.split(";")[0] for warning in stored.warnings] == [
        "unit.xml: report lists no cases for 1 suite declaring 6 tests (1 failed, 0 errors, 2 skipped)"
    ]
    result = await verdict()
    assert result.status is GateStatus.BLOCKED
    assert result.criteria.tests.result is CriterionResult.NOT_MET


async def test_a_late_lower_attempt_never_counts(db: str) -> None:
    await setup_policy()
    await launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"), attempt=2)
    late = await launch("run-1", ("com.acme.checkout.Pay", "t1", "failed"), attempt=1)
    assert late.created and late.superseded
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is TestStatus.PASSED


# Incremental state -----------------------------------------------------------------


async def test_latest_previous_and_failing_since_follow_the_launches(db: str) -> None:
    await setup_policy()
    name = "com.acme.checkout.Pay.t1"
    await launch("r1", ("com.acme.checkout.Pay", "t1", "passed"), at=T0)
    await launch("r2", ("com.acme.checkout.Pay", "t1", "failed"), at=T0 + timedelta(hours=1))
    row = (await states())[name]
    assert (row.latest_status, row.previous_status, row.latest_commit, row.previous_commit) == (
        TestStatus.FAILED,
        TestStatus.PASSED,
        "sha-r2",
        "sha-r1",
    )
    regressions = (await verdict()).metrics.regressions
    assert [(r.name, r.since.commit_sha) for r in regressions] == [(name, "sha-r2")]

    await launch("r3", ("com.acme.checkout.Pay", "t1", "error"), at=T0 + timedelta(hours=2))
    row = (await states())[name]
    assert row.failing_since.commit_sha == "sha-r2"  # still failing since r2
    assert (await verdict()).metrics.regressions == []  # previous was not a pass

    await launch("r4", ("com.acme.checkout.Pay", "t1", "passed"), at=T0 + timedelta(hours=3))
    row = (await states())[name]
    assert (row.latest_status, row.previous_status, row.failing_since) == (TestStatus.PASSED, TestStatus.ERROR, None)
    assert row.recent == "PEFP"
    assert (await verdict()).metrics.flaky == [name]  # passing, failing, passing again


async def test_a_skipped_run_does_not_restart_a_failure(db: str) -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "failed"), at=T0)
    await launch("r2", ("com.acme.checkout.Pay", "t1", "skipped"), at=T0 + timedelta(hours=1))
    await launch("r3", ("com.acme.checkout.Pay", "t1", "failed"), at=T0 + timedelta(hours=2))
    assert (await states())["com.acme.checkout.Pay.t1"].failing_since.commit_sha == "sha-r1"


async def test_pass_and_fail_on_one_commit_is_flaky(db: str) -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "passed"), commit="same", at=T0)
    await launch("r2", ("com.acme.checkout.Pay", "t1", "failed"), commit="same", at=T0 + timedelta(hours=1))
    assert (await states())["com.acme.checkout.Pay.t1"].flaky is True


async def test_launches_on_other_branches_only_make_tests_known(db: str) -> None:
    await setup_policy()
    await launch(
        "r1", ("com.acme.checkout.Pay", "t1", "passed"), ("com.acme.checkout.Pay", "t2", "failed"), branch="feature/x"
    )
    rows = await states()
    assert {name: row.latest_status for name, row in rows.items()} == {
        "com.acme.checkout.Pay.t1": None,
        "com.acme.checkout.Pay.t2": None,
    }
    result = await verdict()
    assert result.criteria.tests.result is CriterionResult.NO_DATA
    assert result.criteria.coverage.numbers.run == 0
    assert [area.suite for area in result.blocking.untested] == ["(never reported)", "suite"]


async def test_only_failing_tests_carry_their_failure_and_its_launches(db: str) -> None:
    await setup_policy()
    pay = "com.acme.checkout.Pay"
    first = await launch("r1", (pay, "a", "failed"), (pay, "b", "failed"), (pay, "c", "passed"), (pay, "d", "failed"))
    second = await launch(
        "r2",
        (pay, "a", "failed"),
        (pay, "b", "skipped"),
        (pay, "c", "failed"),
        (pay, "d", "passed"),
        at=T0 + timedelta(hours=1),
    )
    milestone = await Milestone.get(name="v2.0")
    async with in_transaction() as client:
        facts = await load_facts(client, milestone)
    shown = {
        test.name: (
            test.failing_since and test.failing_since.id,
            test.last_failed and test.last_failed.id,
            test.message,
        )
        for test in facts.tests
    }
    assert shown == {
        "a": (first.launch_id, second.launch_id, "no"),
        "c": (second.launch_id, second.launch_id, "no"),
        # Skipped after a failure, and passing after one: listed, but failing no more.
        "b": (None, None, None),
        "d": (None, None, None),
    }


async def test_a_launch_that_arrives_late_does_not_overwrite_newer_results(db: str) -> None:
    await setup_policy()
    await launch("new", ("com.acme.checkout.Pay", "t1", "passed"), at=T0 + timedelta(days=1))
    await launch("old", ("com.acme.checkout.Pay", "t1", "failed"), at=T0)
    row = (await states())["com.acme.checkout.Pay.t1"]
    assert (row.latest_status, row.previous_status, row.latest_commit) == (
        TestStatus.PASSED,
        TestStatus.FAILED,
        "sha-new",
    )


STATE_COLUMNS = (
    "test_case_id",
    "required_by_name",
    "plan_bits",
    "latest_status",
    "latest_launch_id",
    "latest_commit",
    "last_run_at",
    "previous_status",
    "previous_commit",
    "failing_since_id",
    "flaky",
    "recent",
)


async def state_rows() -> list[tuple]:
    rows = await MilestoneTest.filter(milestone__name="v2.0").order_by("test_case_id").values_list(*STATE_COLUMNS)
    return [tuple(row) for row in rows]


async def rebuilt_state_rows() -> list[tuple]:
    milestone = await Milestone.get(name="v2.0")
    async with in_transaction() as client:
        await state.rebuild(client, milestone, milestone_policy(milestone))
    return await state_rows()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_launches_arriving_in_any_order_leave_the_state_a_replay_gives(db: str, seed: int) -> None:
    await setup_policy()
    rng = random.Random(seed)
    outcomes = ["passed"] * 6 + ["failed", "error", "skipped"]
    planned = []
    for number in range(26):
        # t0 and t1 run in every launch; the others now and then, with more failures.
        cases = [("com.acme.checkout.Pay", f"t{index}", rng.choice(outcomes[:7])) for index in range(2)]
        cases += [
            ("com.acme.checkout.Pay", f"t{index}", rng.choice(outcomes)) for index in range(2, 8) if rng.random() < 0.5
        ]
        planned.append(
            dict(
                source=f"run-{number}",
                cases=cases,
                plan=rng.choice(["smoke", "regression"]),
                branch="main" if rng.random() < 0.15 else "release/2.0",
                at=T0 + timedelta(hours=number),
                commit=f"sha-{rng.randrange(8)}",
            )
        )
    rng.shuffle(planned)
    for number, launch_facts in enumerate(planned):
        await launch(
            launch_facts["source"],
            *launch_facts["cases"],
            plan=launch_facts["plan"],
            branch=launch_facts["branch"],
            at=launch_facts["at"],
            commit=launch_facts["commit"],
        )
        if number % 5 == 4 or number == len(planned) - 1:
            arrived = await state_rows()
            assert arrived == await rebuilt_state_rows()


# Launches after it as large as the late ones (their tests are read whole), or much larger
# (the late launch's tests are looked up in them).
@pytest.mark.parametrize("others", [1, 40])
async def test_a_late_launch_recomputes_only_the_tests_whose_recent_runs_it_changes(
    db: str, monkeypatch: pytest.MonkeyPatch, others: int
) -> None:
    await setup_policy()
    for number in range(12):
        await launch(
            f"run-{number}",
            ("com.acme.checkout.Pay", "a", "passed"),
            *[("com.acme.checkout.Pay", f"b{index}", "passed") for index in range(others)],
            at=T0 + timedelta(hours=number),
        )
    before = await state_rows()
    replayed: list[str] = []
    restricted, rebuild = state._restricted, state.rebuild
    monkeypatch.setattr(state, "_restricted", lambda query, tests: replayed.append(tests) or restricted(query, tests))
    monkeypatch.setattr(state, "rebuild", None)  # never called for a late launch

    await launch("late-1", ("com.acme.checkout.Pay", "a", "failed"), at=T0 - timedelta(hours=1))

    # Older than its ten latest runs, all passing: nothing of a's state moves, nothing is replayed.
    assert replayed == []
    assert await state_rows() == before
    await launch(
        "late-2",
        ("com.acme.checkout.Pay", "a", "failed"),
        ("com.acme.checkout.Pay", "c", "failed"),
        at=T0 - timedelta(hours=2),
    )
    # c alone (one chunk of tests), through each of the 14 launches of the milestone's plans.
    assert replayed == ["?"] * 14
    rows = await states()
    assert (rows["com.acme.checkout.Pay.c"].latest_status, rows["com.acme.checkout.Pay.c"].recent) == (
        TestStatus.FAILED,
        "F",
    )
    assert rows["com.acme.checkout.Pay.a"].recent == "P" * 10
    monkeypatch.setattr(state, "rebuild", rebuild)
    assert await state_rows() == await rebuilt_state_rows()


async def test_a_late_failure_before_a_long_failure_streak_moves_where_the_streak_began(db: str) -> None:
    await setup_policy()
    for number in range(12):
        await launch(f"run-{number}", ("com.acme.checkout.Pay", "a", "failed"), at=T0 + timedelta(hours=number))
    late = await launch("late", ("com.acme.checkout.Pay", "a", "failed"), at=T0 - timedelta(hours=1))

    row = (await states())["com.acme.checkout.Pay.a"]
    assert row.failing_since_id == late.launch_id
    assert await state_rows() == await rebuilt_state_rows()


async def test_required_tests_by_plan_glob_and_exact_id(db: str) -> None:
    await setup_policy()
    await launch("s1", ("com.acme.auth.Login", "t1", "passed"))
    await launch(
        "g1", ("com.acme.checkout.Pay", "t1", "passed"), ("com.acme.search.Find", "t1", "failed"), plan="regression"
    )
    result = await verdict()
    tests = result.criteria.tests.numbers
    # plan:smoke selects auth.Login.t1; the glob selects checkout.Pay.t1; search is not required.
    assert (tests.required, tests.required_failing, tests.executed) == (2, 0, 3)
    # The exact id was never reported: required, untested, listed apart.
    assert result.criteria.coverage.numbers == CoverageNumbers(
        run=2, total=3, coverage=pytest.approx(2 / 3), threshold=1.0
    )
    assert [(a.suite, a.tests) for a in result.blocking.untested] == [("(never reported)", ["com.acme.Missing.test"])]
    assert result.warnings == []


async def test_tests_a_launch_creates_are_matched_as_their_rows_are_inserted(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await setup_policy()
    marked: list[list[int]] = []
    execute_for_ids = state.execute_for_ids

    async def marking(client: Any, query: str, params: Any, ids: list[int]) -> int:
        marked.append(list(ids))
        return await execute_for_ids(client, query, params, ids)

    monkeypatch.setattr(state, "execute_for_ids", marking)
    await launch(
        "r1", ("com.acme.checkout.Pay", "t1", "passed"), ("com.acme.search.Find", "t1", "passed"), plan="regression"
    )
    # Inserted required or not: nothing was left for a second write to mark.
    assert marked == [[]]
    # A test case that a plan outside the milestone brought first is new to the milestone only:
    # matched after its row is inserted, by what is stored of it.
    await launch("o1", ("com.acme.checkout.Pay", "t2", "passed"), plan="other")
    await launch("r2", ("com.acme.checkout.Pay", "t2", "passed"), plan="regression")
    assert [len(ids) for ids in marked] == [0, 1]
    assert {name: row.required_by_name for name, row in (await states()).items()} == {
        "com.acme.checkout.Pay.t1": True,
        "com.acme.search.Find.t1": False,
        "com.acme.checkout.Pay.t2": True,
    }
    assert (await Milestone.get(name="v2.0")).matched_selectors == ["com.acme.checkout.*"]
    assert await state_rows() == await rebuilt_state_rows()


async def test_matching_every_test_again_forgets_selectors_that_match_nothing_now(db: str) -> None:
    await setup_policy()
    await launch("s1", ("com.acme.checkout.Pay", "t1", "passed"))
    milestone = await Milestone.get(name="v2.0")
    assert milestone.matched_selectors == ["com.acme.checkout.*"]
    policy = milestone_policy(milestone).model_copy(update={"required": ["com.acme.nothing.*"]})
    async with in_transaction() as client:
        await state.refresh_required(client, milestone, policy, everything=True)
    assert (await Milestone.get(name="v2.0")).matched_selectors == []
    assert {row.required_by_name for row in (await states()).values()} == {False}


async def test_steady_passing_tests_count_once_whatever_makes_them_required(db: str) -> None:
    await setup_policy()
    await launch(
        "s1",
        ("com.acme.auth.Login", "t1", "passed"),  # required by plan:smoke
        ("com.acme.auth.Login", "t2", "failed"),
        ("com.acme.checkout.Pay", "t1", "passed"),  # by plan:smoke and by the glob
    )
    await launch(
        "r1",
        ("com.acme.checkout.Pay", "t2", "passed"),  # by the glob
        ("com.acme.checkout.Pay", "t3", "skipped"),
        ("com.acme.search.Find", "t1", "passed"),  # not required
        ("com.acme.search.Find", "t2", "error"),
        plan="regression",
    )
    numbers = (await verdict()).criteria.tests.numbers
    assert (numbers.known, numbers.executed, numbers.passed) == (7, 6, 4)
    assert (numbers.required, numbers.required_executed, numbers.required_passed, numbers.required_failing) == (
        5,
        4,
        3,
        1,
    )

    await services.edit_quarantine(REPO, "v2.0", by="U1", by_admin=True, add="com.acme.checkout.Pay.t2")
    result = await verdict()
    numbers = result.criteria.tests.numbers
    # The quarantined test leaves the steady passing counts and the required tests' results.
    assert (numbers.known, numbers.required, numbers.required_executed, numbers.required_passed) == (7, 5, 3, 2)
    assert numbers.quarantined == 1
    assert result.warnings == []


async def test_a_policy_change_rebuilds_the_milestone_state(db: str) -> None:
    await setup_policy()
    await launch("m1", ("com.acme.checkout.Pay", "t1", "failed"), branch="main")
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is None
    load, changes = await services.apply_policy_file(REPO, POLICY.replace('["release/*"]', '["release/*", main]'))
    assert load.ok and {change.milestone.name for change in changes} == {"v2.0"}
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is TestStatus.FAILED


async def test_a_policy_given_with_one_milestone_reaches_the_others(db: str) -> None:
    await services.save_milestone(
        REPO, "v3.0", policy_text=POLICY.replace('"v2.0"', '"v3.0"', 1) + '  "v2.5":\n    signoff: {approvers: [U7]}\n'
    )
    v25 = await services.get_verdict(REPO, "v2.5")
    assert v25.criteria.signoff.numbers.approvers == ["U7"]


async def test_a_milestone_saved_while_another_writer_holds_it_keeps_what_that_writer_wrote(db: str) -> None:
    milestone, _ = await services.save_milestone(REPO, "v2.0")
    holding, release = asyncio.Event(), asyncio.Event()

    async def announce_completion() -> None:
        async with in_transaction() as client:
            await lock_milestones(client, [milestone.id])
            await Milestone.filter(id=milestone.id).using_db(client).update(announced_complete=True)
            holding.set()
            await release.wait()

    writer = asyncio.create_task(announce_completion())
    await holding.wait()
    edit = asyncio.create_task(services.save_milestone(REPO, "v2.0", description="Ships on Friday"))
    # Time for the edit to read the milestone, had it not waited for the writer.
    await asyncio.sleep(0.3)
    release.set()
    await writer
    await edit
    stored = await Milestone.get(id=milestone.id)
    assert (stored.description, stored.announced_complete) == ("Ships on Friday", True)


async def test_a_milestone_holds_at_most_63_plans(db: str) -> None:
    await services.save_milestone(REPO, "everything")
    for number in range(state.MAX_PLANS):
        await launch(f"p{number}", ("C", "t", "passed"), plan=f"plan-{number}")
    with pytest.raises(state.TooManyPlans, match="at most 63 test plans"):
        await launch("one-too-many", ("C", "t", "passed"), plan="plan-63")
    assert await Launch.filter(source_id="one-too-many").count() == 0


async def test_an_invalid_policy_keeps_the_last_valid_one(db: str) -> None:
    await setup_policy()
    load, changes = await services.apply_policy_file(REPO, "milestones:\n  v2.0:\n    pass_rat: 0.5\n")
    assert not load.ok and changes == []
    assert (await verdict()).criteria.tests.numbers.pass_rate_threshold == 0.95
    repo = await find_repository(REPO)
    assert repo.policy_errors[0]["line"] == 3


async def test_a_milestone_deleted_with_its_history_takes_its_tests_rows_and_no_others(db: str) -> None:
    # The database does not check a milestone test's milestone (core.models): nothing would
    # delete the rows with the milestone but the service.
    await setup_policy()
    await services.save_milestone(REPO, "v2.1")
    await launch("run-1", ("com.acme.checkout.Pay", "t1", "passed"), ("com.acme.auth.Login", "t1", "failed"))
    deleted, kept = await Milestone.get(name="v2.0"), await Milestone.get(name="v2.1")
    assert await MilestoneTest.filter(milestone_id=deleted.id).count() == 2

    async def kept_rows_now() -> list[tuple]:
        return await MilestoneTest.filter(milestone_id=kept.id).order_by("id").values_list("id", "latest_status")

    kept_rows = await kept_rows_now()
    assert len(kept_rows) == 2

    with pytest.raises(services.HasHistory):
        await services.delete_milestone(REPO, "v2.0", force=False)
    assert await MilestoneTest.filter(milestone_id=deleted.id).count() == 2
    await services.delete_milestone(REPO, "v2.0", force=True)

    assert not await Milestone.filter(id=deleted.id).exists()
    assert await MilestoneTest.filter(milestone_id=deleted.id).count() == 0
    assert await kept_rows_now() == kept_rows


# Defects ---------------------------------------------------------------------------


def issue(
    number: int,
    labels: list[str],
    *,
    state: str = "open",
    reason: str | None = None,
    milestone: str | None = "v2.0",
    at: datetime = T0,
):
    return services.IssueFacts(
        number=number,
        title=f"issue {number}",
        labels=labels,
        state=state,
        state_reason=reason,
        milestone_title=milestone,
        updated_at=at,
        url=f"https://github.com/{REPO}/issues/{number}",
    )


async def test_defects_follow_their_issue(db: str) -> None:
    await setup_policy()
    outcome = await services.upsert_defect(REPO, issue(1, ["bug", "P0"]))
    assert outcome.applied and outcome.defect.severity is Severity.CRITICAL
    assert [change.verdict.status for change in outcome.changes] == [GateStatus.BLOCKED]
    assert [d.number for d in (await verdict()).blocking.defects] == [1]

    await services.upsert_defect(
        REPO, issue(1, ["bug", "P0"], state="closed", reason="completed", at=T0 + timedelta(hours=1))
    )
    defect = await Defect.get(number=1)
    assert defect.state is DefectState.RESOLVED
    # require_verified: a resolved critical defect still blocks until verified.
    assert [d.number for d in (await verdict()).blocking.defects] == [1]
    await services.upsert_defect(
        REPO, issue(1, ["bug", "P0", "verified"], state="closed", reason="completed", at=T0 + timedelta(hours=2))
    )
    assert (await Defect.get(number=1)).state is DefectState.VERIFIED
    assert (await verdict()).blocking.defects == []


async def test_an_older_issue_event_never_overwrites_a_newer_one(db: str) -> None:
    await setup_policy()
    await services.upsert_defect(
        REPO, issue(2, ["bug", "high"], state="closed", reason="completed", at=T0 + timedelta(hours=2))
    )
    stale = await services.upsert_defect(REPO, issue(2, ["bug", "high"], at=T0))
    assert stale.applied is False
    assert (await Defect.get(number=2)).state is DefectState.RESOLVED


async def test_not_planned_and_unlabelled_issues_stop_counting(db: str) -> None:
    await setup_policy()
    assert (await services.upsert_defect(REPO, issue(3, ["enhancement"]))).defect.counts is False
    await services.upsert_defect(REPO, issue(4, ["bug", "critical"]))
    await services.upsert_defect(REPO, issue(5, ["bug", "P1"]))
    await services.upsert_defect(
        REPO, issue(4, ["bug", "critical"], state="closed", reason="not_planned", at=T0 + timedelta(hours=1))
    )
    await services.upsert_defect(REPO, issue(5, ["P1"], at=T0 + timedelta(hours=1)))
    assert {d.number: d.counts for d in await Defect.all()} == {3: False, 4: False, 5: False}
    assert (await verdict()).criteria.defects.result is CriterionResult.MET


async def test_an_older_event_of_an_issue_that_lost_its_label_is_ignored(db: str) -> None:
    await setup_policy()
    await services.upsert_defect(REPO, issue(8, ["question"], at=T0 + timedelta(hours=2)))
    late = await services.upsert_defect(REPO, issue(8, ["bug", "P0"], at=T0))
    assert late.applied is False
    assert (await verdict()).blocking.defects == []


async def test_a_new_policy_classifies_stored_defects_again(db: str) -> None:
    await setup_policy()
    await services.upsert_defect(REPO, issue(7, ["defect", "sev1"]))
    assert (await verdict()).criteria.defects.result is CriterionResult.MET
    remapped = POLICY.replace(
        "plans:\n  smoke", "defects:\n  labels: [defect]\n  severity_labels: {critical: [sev1]}\nplans:\n  smoke", 1
    )
    load, _ = await services.apply_policy_file(REPO, remapped)
    assert load.ok, load.errors
    assert (await Defect.get(number=7)).severity is Severity.CRITICAL
    assert [d.number for d in (await verdict()).blocking.defects] == [7]


async def test_a_defect_moving_milestone_updates_both(db: str) -> None:
    await setup_policy()
    await services.save_milestone(REPO, "v2.1")
    await services.upsert_defect(REPO, issue(6, ["bug", "P0"]))
    moved = await services.upsert_defect(REPO, issue(6, ["bug", "P0"], milestone="v2.1", at=T0 + timedelta(hours=1)))
    assert {change.milestone.name for change in moved.changes} == {"v2.0", "v2.1"}
    assert (await verdict()).blocking.defects == []
    assert [d.number for d in (await services.get_verdict(REPO, "v2.1")).blocking.defects] == [6]


async def test_an_issue_event_that_changes_nothing_a_milestone_sees_evaluates_no_gate(db: str) -> None:
    await setup_policy()
    snapshots = Snapshot.filter(milestone__name="v2.0")
    # Not a defect, before and after, whatever else moves: no milestone sees it.
    assert (await services.upsert_defect(REPO, issue(3, ["enhancement"]))).changes == []
    taken = await snapshots.count()
    moved = await services.upsert_defect(REPO, issue(3, ["question"], milestone=None, at=T0 + timedelta(hours=1)))
    assert moved.applied and moved.changes == [] and await snapshots.count() == taken
    # A defect that counts: its milestone is evaluated when it appears and when what the gate
    # shows of it changes (its title, here), not when a label the policy ignores comes and goes.
    opened = await services.upsert_defect(REPO, issue(4, ["bug", "P0"]))
    assert [change.milestone.name for change in opened.changes] == ["v2.0"]
    labelled = await services.upsert_defect(REPO, issue(4, ["bug", "P0", "ui"], at=T0 + timedelta(hours=1)))
    assert labelled.applied and labelled.changes == []
    retitled = issue(4, ["bug", "P0", "ui"], at=T0 + timedelta(hours=2))
    retitled = dataclasses.replace(retitled, title="checkout double-charges")
    changed = await services.upsert_defect(REPO, retitled)
    assert [change.milestone.name for change in changed.changes] == ["v2.0"]
    assert [(d.number, d.title) for d in (await verdict()).blocking.defects] == [(4, "checkout double-charges")]
    # Its stopping to count is seen too.
    closed = await services.upsert_defect(REPO, issue(4, ["ui"], at=T0 + timedelta(hours=3)))
    assert [change.milestone.name for change in closed.changes] == ["v2.0"]
    assert (await verdict()).blocking.defects == []


# Sign-off --------------------------------------------------------------------------


async def green_milestone() -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "passed"), ("com.acme.auth.Login", "t1", "passed"))
    await services.save_milestone(REPO, "v2.0", policy_text=POLICY.replace(', "com.acme.Missing.test"', ""))
    assert (await verdict()).status is GateStatus.READY_FOR_SIGNOFF


async def test_approvals_reach_the_quorum_and_complete_the_milestone(db: str) -> None:
    await green_milestone()
    first = await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert first.recorded and first.entry.given_while_green
    assert first.change.verdict.blocking.missing_approvers == ["U2"]
    second = await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    assert second.change.completed and second.change.verdict.status is GateStatus.COMPLETE
    assert second.change.milestone.completed_at is not None


async def test_the_same_approval_twice_is_one_record(db: str) -> None:
    await green_milestone()
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    again = await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert again.recorded is False
    assert await Signoff.filter(user_id="U1").count() == 1


async def test_concurrent_clicks_give_one_record(db: str) -> None:
    await green_milestone()
    outcomes = await asyncio.gather(*(services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE) for _ in range(5)))
    assert sum(outcome.recorded for outcome in outcomes) == 1
    assert await Signoff.filter(user_id="U1", valid=True).count() == 1
    assert len({outcome.entry.id for outcome in outcomes}) == 1


async def test_concurrent_approvals_that_reach_the_quorum_complete_the_milestone(db: str) -> None:
    await green_milestone()
    await asyncio.gather(
        services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE),
        services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE),
    )
    assert [s.name for s in await services.list_milestones([REPO])] == []
    [summary] = [s for s in await services.list_milestones([REPO], include_all=True) if s.name == "v2.0"]
    assert summary.status is GateStatus.COMPLETE
    assert summary.lifecycle is Lifecycle.COMPLETED
    assert summary.completion == 100
    assert (await verdict()).status is GateStatus.COMPLETE


async def test_a_rejection_needs_a_reason_and_blocks_until_withdrawn(db: str) -> None:
    await green_milestone()
    with pytest.raises(ValueError, match="reason"):
        await services.record_decision(REPO, "v2.0", "U1", Decision.REJECT, comment="  ")
    rejected = await services.record_decision(REPO, "v2.0", "U1", Decision.REJECT, comment="perf not signed off")
    assert rejected.change.verdict.status is GateStatus.BLOCKED
    withdrawn = await services.withdraw_decision(REPO, "v2.0", "U1")
    assert withdrawn.entry.decision is Decision.WITHDRAW and withdrawn.entry.ends_id == rejected.entry.id
    assert withdrawn.change.verdict.status is GateStatus.READY_FOR_SIGNOFF
    trail = (await services.signoff_state(REPO, "v2.0")).trail
    assert [(e.decision, e.valid) for e in trail] == [(Decision.REJECT, False), (Decision.WITHDRAW, False)]
    assert await services.withdraw_decision(REPO, "v2.0", "U1") is None
    # Someone with nothing to withdraw who is not an approver is told who the approvers are.
    with pytest.raises(services.NotAnApprover) as refused:
        await services.withdraw_decision(REPO, "v2.0", "U9")
    assert "U1" in refused.value.approvers.users


async def test_changing_a_decision_ends_the_earlier_one(db: str) -> None:
    await green_milestone()
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    await services.record_decision(REPO, "v2.0", "U1", Decision.REJECT, comment="found a bug")
    trail = (await services.signoff_state(REPO, "v2.0")).trail
    assert [(e.decision, e.valid) for e in trail] == [
        (Decision.APPROVE, False),
        (Decision.WITHDRAW, False),
        (Decision.REJECT, True),
    ]


async def test_a_new_failure_dismisses_approvals_and_reopens_completion(db: str) -> None:
    await green_milestone()
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    outcome = await launch(
        "r2",
        ("com.acme.checkout.Pay", "t1", "failed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=1),
    )
    [change] = outcome.changes
    assert change.reopened and change.verdict.status is GateStatus.BLOCKED
    assert sorted(entry.user_id for entry in change.dismissed) == ["U1", "U2"]
    assert all(entry.decision is Decision.DISMISS and "gate turned red" in entry.comment for entry in change.dismissed)
    assert change.verdict.criteria.signoff.numbers.approvals == 0
    assert change.milestone.completed_at is None
    # Green again: the approvers must approve anew.
    fixed = await launch(
        "r3",
        ("com.acme.checkout.Pay", "t1", "passed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=2),
    )
    assert fixed.changes[0].verdict.status is GateStatus.READY_FOR_SIGNOFF


async def test_approval_waits_for_criteria_1_to_3_unless_early_signoff_is_allowed(db: str) -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "failed"))
    with pytest.raises(services.SignoffRefused, match=r"v2.0 cannot be approved until .*1 of 1 required tests failing"):
        await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert await Signoff.all().count() == 0
    # A rejection needs no green gate.
    rejected = await services.record_decision(REPO, "v2.0", "U2", Decision.REJECT, comment="not this week")
    assert rejected.recorded
    await services.apply_policy_file(REPO, POLICY.replace("quorum: 2}", "quorum: 2, allow_early_signoff: true}"))
    early = await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert early.recorded and early.entry.given_while_green is False
    # Early approvals were not given on a green gate: nothing to dismiss when it stays red.
    outcome = await launch("r2", ("com.acme.checkout.Pay", "t1", "error"), at=T0 + timedelta(hours=1))
    assert outcome.changes[0].dismissed == []


async def test_only_approvers_decide(db: str) -> None:
    await green_milestone()
    with pytest.raises(services.NotAnApprover) as refused:
        await services.record_decision(REPO, "v2.0", "U9", Decision.APPROVE)
    assert refused.value.approvers.users == ("U1", "U2") and refused.value.approvers.source == "policy"
    with pytest.raises(services.NotAnApprover):
        await services.record_decision(REPO, "v2.0", "U9", Decision.REJECT, comment="I object")
    assert await Signoff.all().count() == 0


async def test_the_requester_cannot_approve_with_prevent_self_approval(db: str) -> None:
    await green_milestone()
    await services.apply_policy_file(
        REPO,
        POLICY.replace(', "com.acme.Missing.test"', "").replace(
            "quorum: 2}", "quorum: 1, prevent_self_approval: true}"
        ),
    )
    await services.open_signoff_request(
        REPO, "v2.0", team_id="T1", channel_id="C1", message_ts="1.1", requested_by="U1", shown_digest=""
    )
    with pytest.raises(services.SignoffRefused, match="you requested this sign-off"):
        await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    approved = await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    assert approved.entry.requested_by == "U1" and approved.change.completed


async def test_completion_keeps_the_approvals_that_completed_it(db: str) -> None:
    await green_milestone()
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    done = await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    milestone = await Milestone.get(name="v2.0")
    assert [entry["user"] for entry in milestone.completed_with] == ["U1", "U2"]
    assert milestone.completed_at == done.change.milestone.completed_at
    assert [item.subject for item in await outbox.pending(outbox.MILESTONE_COMPLETION)] == [milestone.id]


async def test_user_group_approvers_count_once_their_members_are_known(db: str) -> None:
    await green_milestone()
    await services.apply_policy_file(
        REPO, POLICY.replace(', "com.acme.Missing.test"', "").replace("[U1, U2], quorum: 2", "['@qa-leads'], quorum: 1")
    )
    # Members unknown: nobody can approve yet, and the gate does not pass on an empty list.
    criterion = (await verdict()).criteria.signoff
    assert not criterion.met and "@qa-leads not known yet" in criterion.summary
    with pytest.raises(services.NotAnApprover):
        await services.record_decision(REPO, "v2.0", "U7", Decision.APPROVE)
    changes = await services.store_user_groups({"@qa-leads": ("S1", ["U7", "U8"])})
    assert [change.milestone.name for change in changes] == ["v2.0"]
    assert (await services.store_user_groups({"qa-leads": ("S1", ["U7", "U8"])})) == []  # unchanged
    done = await services.record_decision(REPO, "v2.0", "U7", Decision.APPROVE)
    assert done.change.completed
    # A member who leaves the group no longer counts: the milestone reopens.
    [change] = await services.store_user_groups({"@qa-leads": ("S1", ["U8"])})
    assert change.reopened and change.verdict.criteria.signoff.summary == "0 of 1 approvals"


async def test_approvers_kept_in_slack_are_edited_by_approvers_and_admins(db: str) -> None:
    await green_milestone()
    await services.apply_policy_file(
        REPO, POLICY.replace(', "com.acme.Missing.test"', "").replace("signoff: {approvers: [U1, U2], quorum: 2}", "")
    )
    with pytest.raises(services.SignoffRefused, match="only v2.0's approvers and workspace admins"):
        await services.edit_approvers(REPO, "v2.0", by="U5", by_admin=False, add=["U5"])
    approvers = await services.edit_approvers(REPO, "v2.0", by="UADMIN", by_admin=True, add=["U5", "@qa"])
    assert approvers.entries == ("U5", "@qa") and approvers.source == "slack" and approvers.unresolved == ("@qa",)
    approvers = await services.edit_approvers(REPO, "v2.0", by="U5", by_admin=False, add=["U6", "U5"], remove=["@qa"])
    assert approvers.entries == ("U5", "U6")
    assert (await verdict()).criteria.signoff.summary == "0 of 2 approvals"
    with pytest.raises(ValueError, match="neither a Slack user id"):
        await services.edit_approvers(REPO, "v2.0", by="U5", by_admin=False, add=["not a user"])
    # Nothing is deleted: the removal is on record.
    removed = await Approver.get(member="@qa")
    assert (removed.removed_by, removed.active_member) == ("U5", None)
    # A policy file that lists approvers wins, and says where they are kept.
    await services.apply_policy_file(REPO, POLICY.replace(', "com.acme.Missing.test"', ""))
    with pytest.raises(services.SignoffRefused, match="set in acme/shop's .github/milestones.yml"):
        await services.edit_approvers(REPO, "v2.0", by="U1", by_admin=True, add=["U5"])
    assert (await services.milestone_approvers(REPO, "v2.0"))[1].entries == ("U1", "U2")


async def test_a_new_request_replaces_the_live_one(db: str) -> None:
    await green_milestone()
    first, none = await services.open_signoff_request(
        REPO, "v2.0", team_id="T1", channel_id="C1", message_ts="1.1", requested_by="U1", shown_digest="a"
    )
    second, replaced = await services.open_signoff_request(
        REPO, "v2.0", team_id="T1", channel_id="C2", message_ts="2.2", requested_by="U2", shown_digest="b"
    )
    assert none is None and replaced.id == first.id
    old = await services.signoff_request_at("C1", "1.1")
    assert not old.live and old.replacement.id == second.id and (old.repository, old.milestone) == (REPO, "v2.0")
    assert (await services.signoff_request_at("C2", "2.2")).live
    assert await services.signoff_request_at("C1", "9.9") is None
    # Both are due an update: the old one to point to the new, the new one in case a decision came meanwhile.
    assert {item.subject for item in await outbox.pending(outbox.SIGNOFF_REQUEST)} == {first.id, second.id}
    for item in await outbox.pending(outbox.SIGNOFF_REQUEST):
        await item.delete()
    # A decision makes the live request's message due again, and only that one.
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert [item.subject for item in await outbox.pending(outbox.SIGNOFF_REQUEST)] == [second.id]


async def test_dismissals_are_owed_a_message(db: str) -> None:
    await green_milestone()
    approved = await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    outcome = await launch(
        "r2",
        ("com.acme.checkout.Pay", "t1", "failed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=1),
    )
    [dismissal] = outcome.changes[0].dismissed
    assert dismissal.ends_id == approved.entry.id
    assert [item.subject for item in await outbox.pending(outbox.SIGNOFF_DISMISSAL)] == [dismissal.id]


# Snapshots and listing -------------------------------------------------------------


async def test_snapshots_are_appended_only_when_metrics_change(db: str) -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "passed"), at=T0)
    count = await Snapshot.all().count()
    await launch("r2", ("com.acme.checkout.Pay", "t1", "passed"), at=T0 + timedelta(hours=1))
    assert await Snapshot.all().count() == count
    await launch("r3", ("com.acme.checkout.Pay", "t1", "failed"), at=T0 + timedelta(hours=2))
    latest = await Snapshot.filter(milestone__name="v2.0").order_by("-id").first()
    assert await Snapshot.all().count() == count + 1
    assert (latest.taken_at, latest.status, latest.metrics["required_failing"]) == (
        T0 + timedelta(hours=2),
        GateStatus.BLOCKED,
        1,
    )


async def test_list_puts_the_worst_first(db: str) -> None:
    await setup_policy()
    today = datetime.now(UTC).date()
    await services.save_milestone(REPO, "Sprint 1", target_date=today - timedelta(days=1))
    await services.save_milestone(REPO, "Sprint 2", target_date=today + timedelta(days=9))
    await services.upsert_defect(REPO, issue(9, ["bug", "P0"]))
    summaries = await services.list_milestones([REPO])
    assert [(s.name, s.status, s.overdue) for s in summaries] == [
        ("Sprint 1", GateStatus.NO_DATA, True),
        ("v2.0", GateStatus.BLOCKED, False),
        ("Sprint 2", GateStatus.NO_DATA, False),
    ]
    assert summaries[1].open_blocking == 1


async def test_a_reopened_milestone_catches_up_with_launches_made_while_closed(db: str) -> None:
    await setup_policy()
    await launch("r1", ("com.acme.checkout.Pay", "t1", "passed"), at=T0)
    await services.save_milestone(REPO, "v2.0", state=MilestoneState.CLOSED)
    await launch("r2", ("com.acme.checkout.Pay", "t1", "failed"), at=T0 + timedelta(hours=1))
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is TestStatus.PASSED
    _, change = await services.save_milestone(REPO, "v2.0", state=MilestoneState.OPEN)
    assert (await states())["com.acme.checkout.Pay.t1"].latest_status is TestStatus.FAILED
    assert change.verdict.status is GateStatus.BLOCKED


async def test_a_renamed_github_milestone_keeps_its_history(db: str) -> None:
    await setup_policy()
    milestone, _ = await services.save_milestone(REPO, "v2.0", github_number=7)
    await services.upsert_defect(REPO, issue(10, ["bug", "P0"]))
    renamed, _ = await services.save_milestone(REPO, "v2.0.0", github_number=7)
    assert renamed.id == milestone.id
    assert [d.number for d in (await services.get_verdict(REPO, "v2.0.0")).blocking.defects] == [10]
    with pytest.raises(NotFound):
        await services.get_verdict(REPO, "v2.0")


async def test_groups_seen_for_the_first_time_by_concurrent_clicks_are_stored_once(db: str) -> None:
    await green_milestone()
    await asyncio.gather(*(services.store_user_groups({"@qa": ("S1", ["U7"])}) for _ in range(4)))
    assert await UserGroup.filter(handle="@qa").count() == 1


async def test_a_rejection_blocks_until_withdrawn_even_after_its_author_is_removed(db: str) -> None:
    await green_milestone()
    no_approvers = POLICY.replace(', "com.acme.Missing.test"', "").replace(
        "signoff: {approvers: [U1, U2], quorum: 2}", ""
    )
    await services.apply_policy_file(REPO, no_approvers)
    await services.edit_approvers(REPO, "v2.0", by="UADMIN", by_admin=True, add=["U1", "U2"])
    await services.record_decision(REPO, "v2.0", "U2", Decision.REJECT, comment="not ready")
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    # U1 removes U2, the rejecter, and would then complete it alone.
    await services.edit_approvers(REPO, "v2.0", by="U1", by_admin=False, remove=["U2"])
    blocked = await verdict()
    assert blocked.status is GateStatus.BLOCKED and blocked.criteria.signoff.summary == "rejected by U2"
    done = await services.withdraw_decision(REPO, "v2.0", "U2")
    assert done.change.completed
    # A removed approver's approval ends, and does not count again when they are added back.
    await services.edit_approvers(REPO, "v2.0", by="UADMIN", by_admin=True, remove=["U1"], add=["U3"])
    assert await trail_of("U1") == [(Decision.APPROVE, False), (Decision.DISMISS, False)]
    await services.edit_approvers(REPO, "v2.0", by="UADMIN", by_admin=True, add=["U1"])
    assert (await verdict()).criteria.signoff.summary == "0 of 2 approvals"


async def trail_of(user: str) -> list[tuple[Decision, bool]]:
    return [
        (entry.decision, entry.valid)
        for entry in (await services.signoff_state(REPO, "v2.0")).trail
        if entry.user_id == user
    ]


async def test_early_approvals_are_dismissed_too_when_a_green_gate_turns_red(db: str) -> None:
    await setup_policy()
    await services.apply_policy_file(
        REPO,
        POLICY.replace(', "com.acme.Missing.test"', "").replace("quorum: 2}", "quorum: 2, allow_early_signoff: true}"),
    )
    await launch("r1", ("com.acme.checkout.Pay", "t1", "failed"), ("com.acme.auth.Login", "t1", "passed"))
    early = await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    assert early.entry.given_while_green is False
    await launch(
        "r2",
        ("com.acme.checkout.Pay", "t1", "passed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=1),
    )
    red = await launch(
        "r3",
        ("com.acme.checkout.Pay", "t1", "failed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=2),
    )
    assert [entry.user_id for entry in red.changes[0].dismissed] == ["U1"]


async def test_completion_keeps_only_approvals_that_counted_and_a_reopening_forgets_them(db: str) -> None:
    await green_milestone()
    policy = POLICY.replace(', "com.acme.Missing.test"', "")
    await services.open_signoff_request(
        REPO, "v2.0", team_id="T1", channel_id="C1", message_ts="1.1", requested_by="U1"
    )
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)  # the requester's own, allowed for now
    await services.apply_policy_file(REPO, policy.replace("quorum: 2}", "quorum: 1, prevent_self_approval: true}"))
    assert (await verdict()).status is GateStatus.READY_FOR_SIGNOFF, "the requester's approval no longer counts"
    await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    milestone = await Milestone.get(name="v2.0")
    assert [entry["user"] for entry in milestone.completed_with] == ["U2"]
    await launch(
        "r2",
        ("com.acme.checkout.Pay", "t1", "failed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=1),
    )
    milestone = await Milestone.get(name="v2.0")
    assert (milestone.completed_at, milestone.completed_with) == (None, [])


async def test_a_milestone_closed_because_it_completed_still_takes_launches_and_reopens(db: str) -> None:
    await green_milestone()
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    await services.record_decision(REPO, "v2.0", "U2", Decision.APPROVE)
    milestone = await Milestone.get(name="v2.0")
    await services.github_milestone_closed(milestone.id, True)
    await services.save_milestone(REPO, "v2.0", state=MilestoneState.CLOSED)
    outcome = await launch(
        "r2",
        ("com.acme.checkout.Pay", "t1", "failed"),
        ("com.acme.auth.Login", "t1", "passed"),
        at=T0 + timedelta(hours=1),
    )
    [change] = outcome.changes
    assert change.reopened and change.verdict.status is GateStatus.BLOCKED


async def test_an_approval_ends_with_its_approver_however_they_leave(db: str) -> None:
    await green_milestone()
    policy = POLICY.replace(', "com.acme.Missing.test"', "")
    await services.apply_policy_file(REPO, policy.replace("[U1, U2], quorum: 2", "[U1, '@qa'], quorum: 2"))
    await services.store_user_groups({"@qa": ("S1", ["U2", "U3"])})
    await services.record_decision(REPO, "v2.0", "U1", Decision.APPROVE)
    await services.record_decision(REPO, "v2.0", "U3", Decision.APPROVE)
    assert (await verdict()).status is GateStatus.COMPLETE
    # U3 leaves the group in Slack: the approval ends, and does not come back with them.
    await services.store_user_groups({"@qa": ("S1", ["U2"])})
    assert await trail_of("U3") == [(Decision.APPROVE, False), (Decision.DISMISS, False)]
    await services.store_user_groups({"@qa": ("S1", ["U2", "U3"])})
    assert (await verdict()).criteria.signoff.summary == "1 of 2 approvals"
    # U1 dropped from the policy file: the same.
    await services.apply_policy_file(REPO, policy.replace("[U1, U2], quorum: 2", "['@qa'], quorum: 1"))
    assert await trail_of("U1") == [(Decision.APPROVE, False), (Decision.DISMISS, False)]
    [dismissal] = [
        entry
        for entry in (await services.signoff_state(REPO, "v2.0")).trail
        if entry.user_id == "U1" and entry.decision is Decision.DISMISS
    ]
    assert dismissal.comment == "no longer an approver"


async def test_a_deleted_github_milestone_takes_no_more_launches(db: str) -> None:
    await green_milestone()
    await services.save_milestone(REPO, "v2.0", github_number=7)
    milestone = await Milestone.get(name="v2.0")
    await services.github_milestone_closed(milestone.id, True)
    await services.unlink_github_milestone(REPO, 7)
    outcome = await launch("r9", ("com.acme.checkout.Pay", "t1", "failed"), at=T0 + timedelta(hours=3))
    assert outcome.changes == []


async def test_an_issues_first_events_applied_at_once_make_one_defect(db: str) -> None:
    # Two web processes taking the opened and labeled events of a new issue at the same time:
    # the second waits for the first's defect instead of inserting its own and failing.
    await setup_policy()
    opened, labeled = await asyncio.gather(
        services.upsert_defect(REPO, issue(7, ["bug"], at=T0)),
        services.upsert_defect(REPO, issue(7, ["bug", "P0"], at=T0 + timedelta(seconds=1))),
    )
    assert labeled.applied
    [defect] = await Defect.filter(number=7)
    assert defect.severity is Severity.CRITICAL


async def test_a_pull_requests_first_events_applied_at_once_make_one_pull_request(db: str) -> None:
    await setup_policy()
    opened, synchronized = await asyncio.gather(
        services.record_pull_request(
            REPO, services.PullRequestFacts(number=5, head_sha="a" * 40, base_ref="main", updated_at=T0)
        ),
        services.record_pull_request(
            REPO,
            services.PullRequestFacts(
                number=5, head_sha="b" * 40, base_ref="main", updated_at=T0 + timedelta(seconds=1)
            ),
        ),
    )
    assert opened is not None or synchronized is not None
    [pull] = await PullRequest.filter(number=5)
    assert pull.head_sha == "b" * 40


async def test_waiting_for_a_first_writer_leaves_the_repositorys_other_new_rows_alone(db: str, is_postgres) -> None:
    if not is_postgres:
        pytest.skip("PostgreSQL's row locks; SQLite runs one write transaction at a time")
    # An issue's first event holds the repository's row while a launch stores its plan, whose
    # foreign key reads that row: the insert must not wait for the issue's transaction (it did,
    # and a pull request's event inserting a milestone deadlocked with an issue's first event).
    await setup_policy()
    repo = await find_repository(REPO)
    holding, release = asyncio.Event(), asyncio.Event()

    async def first_event_of_an_issue() -> None:
        async with in_transaction() as client:
            await await_first_writer(client, repo)
            holding.set()
            await release.wait()

    issue_event = asyncio.create_task(first_event_of_an_issue())
    await holding.wait()
    try:
        async with asyncio.timeout(5):
            await TestPlan.create(repository=repo, name="nightly", artifacts="*")
    finally:
        release.set()
        await issue_event
    assert await TestPlan.filter(repository=repo, name="nightly").count() == 1
