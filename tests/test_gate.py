"""The gate rules, table-driven, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from core.enums import CriterionResult as R
from core.enums import Decision, DefectState, GateStatus, Severity, TestStatus
from core.gate import (
    NEVER_REPORTED,
    CoverageNumbers,
    DecisionFact,
    DefectFact,
    LaunchRef,
    LaunchSummary,
    MilestoneFacts,
    TestFact,
    evaluate,
)
from core.metrics import Direction, TrendPoint
from core.policy import MilestonePolicy
from core.services.changes import snapshot_metrics

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
P, F, E, S = TestStatus.PASSED, TestStatus.FAILED, TestStatus.ERROR, TestStatus.SKIPPED


def policy(**fields) -> MilestonePolicy:
    return MilestonePolicy.model_validate(fields)


_ids = iter(range(1, 10**6))


def fact(name: str, latest: TestStatus | None, *, required: bool = False, suite: str = "suite.A", **more) -> TestFact:
    return TestFact(id=next(_ids), classname=suite, name=name, suite=suite, required=required, latest=latest, **more)


def defect(number: int, severity: Severity, state: DefectState = DefectState.OPEN) -> DefectFact:
    return DefectFact(number, f"defect {number}", severity, state, f"https://github.com/o/r/issues/{number}")


def decision(user: str, kind: Decision = Decision.APPROVE, requested_by: str | None = None) -> DecisionFact:
    return DecisionFact(user, kind, NOW - timedelta(hours=1), "reason" if kind is Decision.REJECT else "", requested_by)


def facts(**fields) -> MilestoneFacts:
    fields.setdefault("policy", policy())
    return MilestoneFacts(name="v2.0", **fields)


def results(verdict) -> list[R]:
    return [criterion.result for criterion in verdict.criteria]


GREEN = [fact("a", P), fact("b", P)]


@pytest.mark.parametrize(
    ("case", "given", "status", "criteria"),
    [
        ("no launches yet", facts(), GateStatus.NO_DATA, [R.NO_DATA, R.MET, R.NO_DATA, R.MET]),
        (
            "known tests, none run yet",
            facts(tests=[fact("a", None)]),
            GateStatus.AT_RISK,
            [R.NO_DATA, R.MET, R.NOT_MET, R.MET],
        ),
        ("everything passes", facts(tests=GREEN), GateStatus.COMPLETE, [R.MET] * 4),
        (
            "all tests skipped",
            facts(tests=[fact("a", S), fact("b", S)]),
            GateStatus.AT_RISK,
            [R.NO_DATA, R.MET, R.NOT_MET, R.MET],
        ),
        (
            "a required test fails",
            facts(
                policy=policy(required=["suite.A.*"]), tests=[fact("a", P, required=True), fact("b", F, required=True)]
            ),
            GateStatus.BLOCKED,
            [R.NOT_MET, R.MET, R.MET, R.MET],
        ),
        (
            "a required error counts as failing",
            facts(
                policy=policy(required=["x"]),
                tests=[fact("a", E, required=True)] + [fact(str(i), P) for i in range(40)],
            ),
            GateStatus.BLOCKED,
            [R.NOT_MET, R.MET, R.MET, R.MET],
        ),
        (
            "required selectors match no test",
            facts(policy=policy(required=["nothing.*"]), tests=GREEN, unmatched_selectors=["nothing.*"]),
            GateStatus.AT_RISK,
            [R.NO_DATA, R.MET, R.NO_DATA, R.MET],
        ),
        (
            "selectors match nothing, yet the overall pass rate is too low",
            facts(
                policy=policy(required=["nothing.*"]),
                tests=[fact("a", P), fact("b", F)],
                unmatched_selectors=["nothing.*"],
            ),
            GateStatus.BLOCKED,
            [R.NOT_MET, R.MET, R.NO_DATA, R.MET],
        ),
        (
            "overall pass rate below threshold, no required failing",
            facts(tests=[fact("a", P), fact("b", F)]),
            GateStatus.BLOCKED,
            [R.NOT_MET, R.MET, R.MET, R.MET],
        ),
        (
            "a failure among 100 passes is within 95%",
            facts(tests=[fact("bad", F)] + [fact(str(i), P) for i in range(99)]),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "required pass rate below 1 tolerates some failures",
            facts(
                policy=policy(required=["x"], required_pass_rate=0.5, pass_rate=0.5),
                tests=[fact("a", P, required=True), fact("b", F, required=True)],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "an open critical defect",
            facts(tests=GREEN, defects=[defect(1, Severity.CRITICAL)]),
            GateStatus.BLOCKED,
            [R.MET, R.NOT_MET, R.MET, R.MET],
        ),
        (
            "open medium and low defects are not limited by default",
            facts(tests=GREEN, defects=[defect(1, Severity.MEDIUM), defect(2, Severity.LOW), defect(3, Severity.NONE)]),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "resolved high defect, verification not required",
            facts(tests=GREEN, defects=[defect(1, Severity.HIGH, DefectState.RESOLVED)]),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "resolved but unverified high defect blocks when verification is required",
            facts(
                policy=policy(require_verified=True),
                tests=GREEN,
                defects=[defect(1, Severity.HIGH, DefectState.RESOLVED)],
            ),
            GateStatus.BLOCKED,
            [R.MET, R.NOT_MET, R.MET, R.MET],
        ),
        (
            "verified defect never blocks",
            facts(
                policy=policy(require_verified=True),
                tests=GREEN,
                defects=[defect(1, Severity.CRITICAL, DefectState.VERIFIED)],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "defects within a limit above zero",
            facts(
                policy=policy(max_open_defects={"high": 2}),
                tests=GREEN,
                defects=[defect(1, Severity.HIGH), defect(2, Severity.HIGH)],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "a required test not run yet lowers coverage",
            facts(policy=policy(required=["x"]), tests=[fact("a", P, required=True), fact("b", None, required=True)]),
            GateStatus.AT_RISK,
            [R.MET, R.MET, R.NOT_MET, R.MET],
        ),
        (
            "a required test skipped is not covered",
            facts(policy=policy(required=["x"]), tests=[fact("a", P, required=True), fact("b", S, required=True)]),
            GateStatus.AT_RISK,
            [R.MET, R.MET, R.NOT_MET, R.MET],
        ),
        (
            "coverage threshold below 1 tolerates untested tests",
            facts(
                policy=policy(required=["x"], coverage=0.5),
                tests=[fact("a", P, required=True), fact("b", None, required=True)],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "an exact id never reported is untested",
            facts(
                policy=policy(required=["suite.A.a", "com.acme.Missing.test"]),
                tests=[fact("a", P, required=True)],
                missing_exact_ids=["com.acme.Missing.test"],
            ),
            GateStatus.AT_RISK,
            [R.MET, R.MET, R.NOT_MET, R.MET],
        ),
        (
            "criteria met, approvals missing",
            facts(
                policy=policy(signoff={"approvers": ["U1", "U2"]}),
                approvers=["U1", "U2"],
                tests=GREEN,
                decisions=[decision("U1")],
            ),
            GateStatus.READY_FOR_SIGNOFF,
            [R.MET, R.MET, R.MET, R.NOT_MET],
        ),
        (
            "all approvers approved",
            facts(
                policy=policy(signoff={"approvers": ["U1", "U2"]}),
                approvers=["U1", "U2"],
                tests=GREEN,
                decisions=[decision("U1"), decision("U2")],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "a quorum of one",
            facts(
                policy=policy(signoff={"approvers": ["U1", "U2"], "quorum": 1}),
                approvers=["U1", "U2"],
                tests=GREEN,
                decisions=[decision("U2")],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "an approval from someone who is not an approver does not count",
            facts(
                policy=policy(signoff={"approvers": ["U1"]}), approvers=["U1"], tests=GREEN, decisions=[decision("U9")]
            ),
            GateStatus.READY_FOR_SIGNOFF,
            [R.MET, R.MET, R.MET, R.NOT_MET],
        ),
        (
            "a standing rejection blocks even a green gate",
            facts(
                policy=policy(signoff={"approvers": ["U1", "U2"], "quorum": 1}),
                approvers=["U1", "U2"],
                tests=GREEN,
                decisions=[decision("U1"), decision("U2", Decision.REJECT)],
            ),
            GateStatus.BLOCKED,
            [R.MET, R.MET, R.MET, R.NOT_MET],
        ),
        (
            "self-approval does not count when prevented",
            facts(
                policy=policy(signoff={"approvers": ["U1"], "prevent_self_approval": True}),
                approvers=["U1"],
                tests=GREEN,
                decisions=[decision("U1", requested_by="U1")],
            ),
            GateStatus.READY_FOR_SIGNOFF,
            [R.MET, R.MET, R.MET, R.NOT_MET],
        ),
        (
            "self-approval counts when allowed",
            facts(
                policy=policy(signoff={"approvers": ["U1"]}),
                approvers=["U1"],
                tests=GREEN,
                decisions=[decision("U1", requested_by="U1")],
            ),
            GateStatus.COMPLETE,
            [R.MET] * 4,
        ),
        (
            "no test data but a blocking defect",
            facts(defects=[defect(1, Severity.CRITICAL)]),
            GateStatus.BLOCKED,
            [R.NO_DATA, R.NOT_MET, R.NO_DATA, R.MET],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_verdict(case: str, given: MilestoneFacts, status: GateStatus, criteria: list[R]) -> None:
    verdict = evaluate(given, NOW)
    assert verdict.status is status, case
    assert results(verdict) == criteria, case


@pytest.mark.parametrize(
    ("target", "status_complete", "overdue", "days_left"),
    [
        (TODAY - timedelta(days=1), False, True, -1),
        (TODAY, False, False, 0),
        (TODAY + timedelta(days=5), False, False, 5),
        (TODAY - timedelta(days=3), True, False, -3),
        (None, False, False, None),
    ],
)
def test_overdue_and_days_left(
    target: date | None, status_complete: bool, overdue: bool, days_left: int | None
) -> None:
    tests = GREEN if status_complete else [fact("a", F)]
    verdict = evaluate(facts(tests=tests, target_date=target), NOW)
    assert (verdict.status is GateStatus.COMPLETE) is status_complete
    assert verdict.overdue is overdue
    assert verdict.days_left == days_left


def test_numbers_behind_the_criteria() -> None:
    since = LaunchRef(7, "abc1234def", "https://github.com/o/r/actions/runs/7", NOW - timedelta(days=2))
    given = facts(
        policy=policy(required=["suite.A.*"], pass_rate=0.9),
        tests=[
            fact("a", P, required=True),
            fact("b", F, required=True, failing_since=since, previous=P, message="boom"),
            fact("c", None, required=True),
            fact("d", P, suite="suite.B"),
            fact("e", S, suite="suite.B"),
        ],
        defects=[defect(5, Severity.HIGH), defect(3, Severity.HIGH), defect(9, Severity.LOW)],
    )
    verdict = evaluate(given, NOW)
    criteria = verdict.criteria
    tests, defects, coverage, signoff = criteria.tests, criteria.defects, criteria.coverage, criteria.signoff
    assert tests.numbers.executed == 3
    assert tests.numbers.passed == 2
    assert tests.numbers.pass_rate == pytest.approx(2 / 3)
    assert tests.numbers.required == 3
    assert tests.numbers.required_failing == 1
    assert tests.summary == "1 of 2 required tests failing; pass rate 66.7% below 90%"
    [failing] = verdict.blocking.failing_tests
    assert (failing.name, failing.status, failing.since, failing.message) == ("suite.A.b", F, since, "boom")
    assert [d.number for d in verdict.blocking.defects] == [3, 5]
    assert defects.numbers.open == {"critical": 0, "high": 2, "medium": 0, "low": 1, "none": 0}
    assert defects.numbers.to_close == 2
    assert coverage.numbers == CoverageNumbers(run=2, total=3, coverage=pytest.approx(2 / 3), threshold=1.0)
    assert [(area.suite, area.tests) for area in verdict.blocking.untested] == [("suite.A", ["suite.A.c"])]
    assert signoff.summary == "no sign-off required"
    assert verdict.metrics.tests == {"passed": 2, "failed": 1, "error": 0, "skipped": 1, "not_run": 1, "total": 5}
    assert [r.name for r in verdict.metrics.regressions] == ["suite.A.b"]
    # What a snapshot keeps is read by name, in the shape stored snapshots already have.
    assert snapshot_metrics(verdict) == {
        "status": "blocked",
        "gate_green": False,
        "criteria": {"required_tests": "not_met", "defects": "not_met", "coverage": "not_met", "signoff": "met"},
        "pass_rate": pytest.approx(2 / 3, abs=1e-6),
        "tests": verdict.metrics.tests,
        "required_failing": 1,
        "open_blocking": 2,
        "defects_open": {"critical": 0, "high": 2, "medium": 0, "low": 1, "none": 0},
        "coverage": pytest.approx(2 / 3, abs=1e-6),
        "regressions": 1,
        "flaky": 0,
        "approvals": 0,
        "rejections": 0,
        "lifecycle": "active",
        # Required tests 1 of 3 passing, coverage 2 of 3 run, 0 of 2 limited defects resolved.
        "completion": 33,
        "failing_new": 1,
        "failing_known": 0,
        "quarantined": 0,
    }


def test_criteria_are_named_and_iterate_in_the_gate_order() -> None:
    criteria = evaluate(facts(tests=[fact("a", P)]), NOW).criteria
    assert [criterion.name for criterion in criteria] == ["required_tests", "defects", "coverage", "signoff"]
    assert list(criteria) == [criteria.tests, criteria.defects, criteria.coverage, criteria.signoff]
    # Sign-off waits for every other criterion: a new one joins them by being declared.
    assert criteria.before_signoff == (criteria.tests, criteria.defects, criteria.coverage)


def test_untested_areas_grouped_by_suite_with_never_reported_ids() -> None:
    given = facts(
        policy=policy(required=["x"]),
        tests=[
            fact("a", None, required=True, suite="checkout"),
            fact("b", S, required=True, suite="checkout"),
            fact("c", None, required=True, suite="auth"),
            fact("d", P, required=True, suite="auth"),
        ],
        missing_exact_ids=["com.acme.Gone.test"],
    )
    verdict = evaluate(given, NOW)
    assert [(area.suite, area.tests) for area in verdict.blocking.untested] == [
        (NEVER_REPORTED, ["com.acme.Gone.test"]),
        ("auth", ["auth.c"]),
        ("checkout", ["checkout.a", "checkout.b"]),
    ]
    assert verdict.criteria.coverage.numbers.total == 5


def test_missing_approvers_and_rejections_are_listed() -> None:
    given = facts(
        policy=policy(signoff={"approvers": ["U1", "U2", "U3"]}),
        approvers=["U1", "U2", "U3"],
        tests=GREEN,
        decisions=[decision("U1"), decision("U3", Decision.REJECT)],
    )
    verdict = evaluate(given, NOW)
    assert verdict.blocking.missing_approvers == ["U2"]
    assert [r.user_id for r in verdict.blocking.rejections] == ["U3"]
    assert verdict.criteria.signoff.summary == "rejected by U3"


def test_regressions_need_a_previous_pass() -> None:
    given = facts(
        tests=[
            fact("new-failure", F, previous=P),
            fact("old-failure", F, previous=F),
            fact("first-run-failure", F),
            fact("error-after-pass", E, previous=P),
        ]
    )
    names = [r.name for r in evaluate(given, NOW).metrics.regressions]
    assert names == ["suite.A.new-failure", "suite.A.error-after-pass"]


@pytest.mark.parametrize(
    ("flag", "recent", "flaky"),
    [(True, "P", True), (False, "PFP", True), (False, "PPFF", False), (False, "PSFSP", True), (False, "", False)],
)
def test_flaky_tests(flag: bool, recent: str, flaky: bool) -> None:
    given = facts(tests=[fact("t", P, flaky=flag, recent=recent)])
    assert evaluate(given, NOW).metrics.flaky == (["suite.A.t"] if flaky else [])


def _launches(*rates: float) -> list[LaunchSummary]:
    return [
        LaunchSummary(NOW - timedelta(days=len(rates) - i), int(rate * 100), 100 - int(rate * 100), 0)
        for i, rate in enumerate(rates)
    ]


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ((), Direction.UNKNOWN),
        ((0.9,), Direction.UNKNOWN),
        ((0.80, 0.85, 0.90), Direction.IMPROVING),
        ((0.95, 0.90, 0.80), Direction.DECLINING),
        ((0.90, 0.90, 0.90), Direction.STABLE),
    ],
)
def test_pass_rate_direction(rates: tuple[float, ...], expected: Direction) -> None:
    assert evaluate(facts(tests=GREEN, recent_launches=_launches(*rates)), NOW).metrics.direction is expected


def test_forecast_projects_when_blocking_defects_reach_zero() -> None:
    # Blocking defects 4, 3, then 2 now: a quarter closed a day, so the last 2 take 8 days.
    trend = [TrendPoint(NOW - timedelta(days=8), 1.0, 4), TrendPoint(NOW - timedelta(days=4), 1.0, 3)]
    given = facts(
        tests=GREEN,
        defects=[defect(1, Severity.CRITICAL), defect(2, Severity.CRITICAL)],
        trend=trend,
        target_date=TODAY + timedelta(days=5),
    )
    forecast = evaluate(given, NOW).metrics.forecast
    assert forecast.date == TODAY + timedelta(days=8)
    assert forecast.at_risk is True
    later = evaluate(given._replace(target_date=TODAY + timedelta(days=30)), NOW).metrics.forecast
    assert later.date == TODAY + timedelta(days=8)
    assert later.at_risk is False


def test_forecast_without_convergence_is_at_risk() -> None:
    trend = [TrendPoint(NOW - timedelta(days=6), 1.0, 1), TrendPoint(NOW - timedelta(days=3), 1.0, 2)]
    given = facts(
        tests=GREEN,
        defects=[defect(1, Severity.CRITICAL), defect(2, Severity.CRITICAL)],
        trend=trend,
        target_date=TODAY + timedelta(days=5),
    )
    verdict = evaluate(given, NOW)
    assert verdict.metrics.forecast.date is None
    assert verdict.metrics.forecast.at_risk is True
    assert "forecast: blocking defects are not going down" in verdict.warnings


def test_forecast_is_today_when_criteria_hold() -> None:
    forecast = evaluate(facts(tests=GREEN, target_date=TODAY), NOW).metrics.forecast
    assert (forecast.date, forecast.at_risk) == (TODAY, False)


def test_forecast_from_a_rising_pass_rate() -> None:
    trend = [TrendPoint(NOW - timedelta(days=10), 0.80, 0)]
    given = facts(tests=[fact(str(i), P) for i in range(9)] + [fact("x", F)], trend=trend)
    # 0.80 -> 0.90 over 10 days: 0.01/day, 0.05 to go to 95%: 5 days.
    assert evaluate(given, NOW).metrics.forecast.date == TODAY + timedelta(days=5)


@pytest.mark.parametrize(
    "rates",
    [
        (5 / 6, 5 / 6),  # steady, but stored rounded while the live rate is not
        (0.833333, 0.8333334, 0.8333336),  # a creep far too slow to mean anything
    ],
)
def test_a_flat_pass_rate_gives_no_forecast_date(rates: tuple[float, ...]) -> None:
    trend = [TrendPoint(NOW - timedelta(hours=len(rates) - i), rate, 0) for i, rate in enumerate(rates)]
    given = facts(
        tests=[fact(str(i), P) for i in range(5)] + [fact("x", F)], trend=trend, target_date=TODAY + timedelta(days=9)
    )
    forecast = evaluate(given, NOW).metrics.forecast
    assert (forecast.date, forecast.at_risk) == (None, True)
