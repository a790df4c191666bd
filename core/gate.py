"""The gate: is a milestone complete? A pure function from its facts to a verdict.

PRODUCT.md section 3. Four criteria, each met, not met, or without data:
1. required tests pass (and the overall pass rate reaches its threshold),
2. open defects within the policy's limits per severity,
3. coverage: the share of required tests that ran (not skipped) on the milestone,
4. sign-off: approvals reach the quorum and no rejection stands;
and a fifth for a milestone that rolls others up (policy `includes`):
5. every included milestone complete (a closed one only with `allow_closed`).

Status: `complete` when all hold; `ready_for_signoff` when all but sign-off hold; `blocked`
when a test, defect or roll-up criterion fails or a rejection stands; `no_data` before any
test result or defect; `at_risk` otherwise (tests not run yet, data missing).
`overdue` is a flag beside the status, set past the target date until complete.

Triage (PRODUCT.md section 8): a failing test with an open linked defect is a known failure;
with `known_failures: allow` a required one whose defects are all open and within the limits
counts under defects instead of failing criterion 1. Quarantined tests run and are reported
but count neither for the pass rate nor as required failures; coverage counts them as run.
Failing tests are grouped by cause (core.causes) into clusters.
`overdue` is a flag beside the status, set past the target date until complete; the
lifecycle (core/lifecycle.py) sits beside the status too. Dates are the team's (its zone).

Completion is one figure, 0-100: the weighted mean (policy `progress`) of how far along each
criterion that applies is.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Generic, NamedTuple, TypeVar

from core.causes import normalise
from core.enums import (
    SEVERITY_ORDER,
    CriterionResult,
    Decision,
    DefectState,
    GateStatus,
    Lifecycle,
    Severity,
    TestStatus,
)
from core.lifecycle import lifecycle_state, today_in
from core.metrics import Direction, Forecast, TrendPoint, direction, forecast, is_flaky
from core.policy import MilestonePolicy
from core.wording import first_line, percent, plural

NEVER_REPORTED = "(never reported)"

# The facts and figures are NamedTuples, not frozen dataclasses: Python 3.11 compiles six
# methods for each dataclass when the module loads, and every command that shows a verdict
# loads this one (`milestones status` paid about 1 ms a class). Dataclasses remain where the
# class iterates its own way (Criteria), has a field tuples have as a method (Cluster.count),
# or changes (_Scan).


class LaunchRef(NamedTuple):
    id: int
    commit_sha: str | None
    url: str | None
    finished_at: datetime | None


class TestFact(NamedTuple):
    """One test of the milestone. A tuple: a verdict reads tens of thousands of them."""

    id: int
    classname: str | None
    name: str | None
    suite: str | None
    required: bool
    latest: TestStatus | None = None
    previous: TestStatus | None = None
    flaky: bool = False
    recent: str = ""
    failing_since: LaunchRef | None = None
    message: str | None = None
    # For a failing test: the launch of its latest result, and its cause's signature (core.causes).
    last_failed: LaunchRef | None = None
    cause: str | None = None

    @property
    def display_name(self) -> str:
        return f"{self.classname}.{self.name}" if self.classname else (self.name or "")

    @property
    def executed(self) -> bool:
        return self.latest is not None and self.latest is not TestStatus.SKIPPED


# Not a pytest test class; a NamedTuple body takes fields only.
setattr(TestFact, "__test__", False)  # noqa: B010


class DefectFact(NamedTuple):
    number: int
    title: str
    severity: Severity
    state: DefectState
    url: str | None = None


class LinkFact(NamedTuple):
    """A test of the milestone that a defect says it breaks, with the test's latest result."""

    defect: int
    test_id: int
    test: str
    latest: TestStatus | None
    last_run_at: datetime | None


class QuarantineFact(NamedTuple):
    test_id: int
    test: str
    source: str  # policy, auto or slack
    reason: str
    added_by: str
    added_at: datetime
    expires_on: date | None = None


class IncludedFact(NamedTuple):
    """A milestone this one rolls up, as its own latest verdict left it."""

    name: str
    status: GateStatus
    lifecycle: Lifecycle
    completion: int | None


class DecisionFact(NamedTuple):
    user_id: str
    decision: Decision
    at: datetime
    comment: str = ""
    # Who asked for this sign-off: with prevent_self_approval, their own approval does not count.
    requested_by: str | None = None


class LaunchSummary(NamedTuple):
    finished_at: datetime
    passed: int
    failed: int
    errors: int

    @property
    def pass_rate(self) -> float | None:
        executed = self.passed + self.failed + self.errors
        return self.passed / executed if executed else None


class PassingCounts(NamedTuple):
    """Tests whose latest run passed and that are neither flaky nor flipping.

    They can never be listed as blocking, so the store counts them instead of
    shipping each one: a milestone of 50,000 tests is a few hundred facts.
    """

    total: int = 0
    required: int = 0


class MilestoneFacts(NamedTuple):
    name: str
    policy: MilestonePolicy
    target_date: date | None = None
    tests: Sequence[TestFact] = ()
    passing: PassingCounts = PassingCounts()
    unmatched_selectors: Sequence[str] = ()
    missing_exact_ids: Sequence[str] = ()
    defects: Sequence[DefectFact] = ()
    approvers: Sequence[str] = ()
    # User groups among the approvers whose members are not known (yet).
    unresolved_approvers: Sequence[str] = ()
    decisions: Sequence[DecisionFact] = ()
    recent_launches: Sequence[LaunchSummary] = ()  # oldest first
    trend: Sequence[TrendPoint] = ()  # snapshots, oldest first
    # Defect links of the milestone's tests, and the linked defects (of any milestone, or none).
    links: Sequence[LinkFact] = ()
    linked_defects: Sequence[DefectFact] = ()
    # When each resolved linked defect was closed: its tests passing since make it ready to verify.
    resolved_at: Mapping[int, datetime] = MappingProxyType({})
    quarantine: Sequence[QuarantineFact] = ()
    # The start (the policy's, else the one set in the CLI or Slack) and the team's zone.
    start_date: date | None = None
    zone: str = "UTC"
    closed: bool = False
    included: Sequence[IncludedFact] = ()
    # Defects resolved before the start: the completion figure counts what was fixed since.
    resolved_before_start: frozenset[int] = frozenset()


# The numbers behind each criterion. Their field names are the keys of a verdict's JSON.


class TestsNumbers(NamedTuple):
    pass_rate: float | None
    pass_rate_threshold: float
    executed: int
    passed: int
    required: int
    required_executed: int
    required_passed: int
    required_pass_rate: float | None
    required_pass_rate_threshold: float
    required_failing: int
    known: int  # every test of the milestone, run or not
    # Left out of the pass rate and of the required tests' results: quarantined tests, and
    # failing ones accepted as known failures (policy known_failures: allow).
    quarantined: int = 0
    accepted_known: int = 0

    @property
    def progress(self) -> float | None:
        """Required tests passing of those required (all tests when none are named required)."""
        if self.required:
            return self.required_passed / self.required
        return self.passed / self.known if self.known else None


setattr(TestsNumbers, "__test__", False)  # noqa: B010


class DefectsNumbers(NamedTuple):
    open: dict[str, int]  # severity -> open (or, with require_verified, unverified) defects
    limits: dict[str, int]  # severity -> most allowed
    require_verified: bool
    blocking: int
    # How many must close for the criterion to hold: the forecast's distance to green.
    to_close: int
    # Of the severities with a limit: resolved since the milestone's start, and still open.
    resolved: int
    unresolved: int
    # Failing required tests counted here, under their open defects, instead of under tests.
    accepted_known: int = 0

    @property
    def progress(self) -> float | None:
        handled = self.resolved + self.unresolved
        return self.resolved / handled if handled else None


class CoverageNumbers(NamedTuple):
    run: int
    total: int
    coverage: float | None
    threshold: float

    @property
    def progress(self) -> float | None:
        return self.coverage


class SignoffNumbers(NamedTuple):
    approvals: int
    quorum: int
    rejections: int
    approvers: list[str]
    unresolved: list[str]  # user groups whose members are not known

    @property
    def progress(self) -> float | None:
        return min(1.0, self.approvals / self.quorum) if self.quorum else None


class IncludedMilestone(NamedTuple):
    name: str
    status: GateStatus
    lifecycle: Lifecycle
    completion: int | None
    counts: bool  # complete, or closed with allow_closed


class IncludesNumbers(NamedTuple):
    milestones: list[IncludedMilestone]
    complete: int
    allow_closed: bool

    @property
    def progress(self) -> float | None:
        return self.complete / len(self.milestones) if self.milestones else None


Numbers = TypeVar("Numbers", TestsNumbers, DefectsNumbers, CoverageNumbers, SignoffNumbers, IncludesNumbers)


class Criterion(NamedTuple, Generic[Numbers]):
    name: str  # stable: snapshots and JSON key criteria by it
    result: CriterionResult
    summary: str
    numbers: Numbers

    @property
    def met(self) -> bool:
        return self.result is CriterionResult.MET


AnyCriterion = (
    Criterion[TestsNumbers]
    | Criterion[DefectsNumbers]
    | Criterion[CoverageNumbers]
    | Criterion[SignoffNumbers]
    | Criterion[IncludesNumbers]
)


@dataclass(frozen=True)
class Criteria:
    """The gate's criteria by name, iterable in their order (PRODUCT.md section 3)."""

    tests: Criterion[TestsNumbers]
    defects: Criterion[DefectsNumbers]
    coverage: Criterion[CoverageNumbers]
    signoff: Criterion[SignoffNumbers]
    # Only for a milestone that rolls others up (policy `includes`).
    includes: Criterion[IncludesNumbers] | None = None

    def __iter__(self) -> Iterator[AnyCriterion]:
        return iter(self.all)

    @property
    def all(self) -> tuple[AnyCriterion, ...]:
        rolled_up = (self.includes,) if self.includes is not None else ()
        return (self.tests, self.defects, self.coverage, *rolled_up, self.signoff)

    @property
    def before_signoff(self) -> tuple[AnyCriterion, ...]:
        """Every criterion but sign-off: what an approval waits for, and what a stale one loses."""
        return tuple(criterion for criterion in self.all if criterion is not self.signoff)


class FailingTest(NamedTuple):
    name: str
    suite: str
    status: TestStatus
    since: LaunchRef | None
    message: str | None
    # Its open linked defects: a known failure; none: new, untriaged.
    known: tuple[DefectFact, ...] = ()
    cause: str | None = None


class KnownFailure(NamedTuple):
    name: str
    status: TestStatus
    required: bool
    defects: list[DefectFact]
    # Counted under defects instead of failing the tests criterion (known_failures: allow).
    accepted: bool


@dataclass(frozen=True)
class Cluster:
    """Failing tests that share a cause, and the launches that first and last saw it."""

    signature: str
    count: int
    first: LaunchRef | None
    last: LaunchRef | None
    tests: list[str]


class AffectedTest(NamedTuple):
    name: str
    status: TestStatus | None


class DefectTests(NamedTuple):
    """A defect and the milestone's tests it says it breaks, with their latest results."""

    defect: DefectFact
    total: int
    tests: list[AffectedTest]  # the first DEFECT_TESTS
    # Resolved, and every linked test passed in a run after that: a fix to verify.
    ready_to_verify: bool


class QuarantinedTest(NamedTuple):
    name: str
    source: str
    reason: str
    by: str
    since: datetime
    expires_on: date | None
    status: TestStatus | None


class Triage(NamedTuple):
    """What the failures are: new or known, grouped by cause, and what is quarantined."""

    known_failures: str  # the policy's block or allow
    new: Sequence[str] = ()  # failing tests with no open linked defect
    known: Sequence[KnownFailure] = ()
    clusters: Sequence[Cluster] = ()  # biggest first
    quarantined: Sequence[QuarantinedTest] = ()
    defects: Sequence[DefectTests] = ()

    @property
    def accepted(self) -> list[KnownFailure]:
        return [failure for failure in self.known if failure.accepted]

    @property
    def ready_to_verify(self) -> list[DefectTests]:
        return [entry for entry in self.defects if entry.ready_to_verify]


class UntestedArea(NamedTuple):
    suite: str
    tests: list[str]


class Blocking(NamedTuple):
    failing_tests: Sequence[FailingTest] = ()
    defects: Sequence[DefectFact] = ()
    untested: Sequence[UntestedArea] = ()
    missing_approvers: Sequence[str] = ()
    rejections: Sequence[DecisionFact] = ()


class Metrics(NamedTuple):
    pass_rate: float | None
    direction: Direction
    tests: dict[str, int]
    defects_open: dict[str, int]
    critical: dict[str, int]
    coverage: float | None
    required_total: int
    required_run: int
    regressions: list[FailingTest]
    flaky: list[str]
    forecast: Forecast


class Verdict(NamedTuple):
    milestone: str
    status: GateStatus
    overdue: bool
    target_date: date | None
    days_left: int | None
    criteria: Criteria
    blocking: Blocking
    metrics: Metrics
    warnings: list[str]
    triage: Triage = Triage("block")
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    start_date: date | None = None
    completion: int | None = None

    @property
    def gate_green(self) -> bool:
        """Every criterion but sign-off met: what sign-off waits for, and what stale approvals lose."""
        return all(criterion.met for criterion in self.criteria.before_signoff)

    @property
    def what_blocks_signoff(self) -> str:
        """The summaries of the criteria before sign-off not met, in one line."""
        return "; ".join(criterion.summary for criterion in self.criteria.before_signoff if not criterion.met)


@dataclass
class _Scan:
    """Everything the criteria and metrics need from the tests, gathered in one pass."""

    tally: dict[TestStatus | None, int] = field(default_factory=lambda: dict.fromkeys([*TestStatus, None], 0))
    required: int = 0
    required_executed: int = 0
    required_passed: int = 0
    failing_required: list[FailingTest] = field(default_factory=list)
    scope: int = 0
    scope_run: int = 0
    untested: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    regressions: list[FailingTest] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    # Executed tests that count for neither the pass rate nor the required results.
    left_out_executed: int = 0
    left_out_passed: int = 0
    quarantined: int = 0
    accepted: int = 0

    @property
    def executed(self) -> int:
        return self.tally[TestStatus.PASSED] + self.tally[TestStatus.FAILED] + self.tally[TestStatus.ERROR]

    @property
    def pass_rate(self) -> float | None:
        rated = self.executed - self.left_out_executed
        return (self.tally[TestStatus.PASSED] - self.left_out_passed) / rated if rated else None


def _scan(
    tests: Sequence[TestFact],
    passing: PassingCounts,
    coverage_over_required: bool,
    known: dict[int, tuple[DefectFact, ...]],
    quarantined: Set[int] = frozenset(),
    accepted: Set[int] = frozenset(),
) -> _Scan:
    scan = _Scan()
    tally = scan.tally
    tally[TestStatus.PASSED] = passing.total
    scan.required = scan.required_executed = scan.required_passed = passing.required
    scan.scope = scan.scope_run = passing.required if coverage_over_required else passing.total
    untested = scan.untested
    passed, skipped = TestStatus.PASSED, TestStatus.SKIPPED
    for test in tests:
        latest = test.latest
        tally[latest] += 1
        executed = latest is not None and latest is not skipped
        left_out = test.id in quarantined or test.id in accepted
        if left_out and executed:
            scan.left_out_executed += 1
            scan.left_out_passed += latest is passed
            if test.id in quarantined:
                scan.quarantined += 1
            else:
                scan.accepted += 1
        if test.required:
            scan.required += 1
            if executed and not left_out:
                scan.required_executed += 1
                if latest is passed:
                    scan.required_passed += 1
                else:
                    scan.failing_required.append(_failing(test, known.get(test.id, ())))
        if test.required or not coverage_over_required:
            scan.scope += 1
            if executed:
                scan.scope_run += 1
            else:
                untested[test.suite or ""].append(test.display_name)
        if executed and latest is not passed and test.previous is passed:
            scan.regressions.append(_failing(test, known.get(test.id, ())))
        if is_flaky(test.flaky, test.recent):
            scan.flaky.append(test.display_name)
    # New, untriaged failures first: known ones have someone on them already.
    scan.failing_required.sort(key=lambda failing: bool(failing.known))
    return scan


def evaluate(facts: MilestoneFacts, now: datetime) -> Verdict:
    """`now` must be timezone-aware; its date in the team's zone decides overdue and days left."""
    today = today_in(facts.zone, now)
    policy = facts.policy
    # Without required selectors, coverage is over every test of the milestone's plans.
    quarantined = active_quarantine(facts, today)
    linked = _linked_defects(facts)
    known = {test_id: tuple(d for d in defects if d.state is DefectState.OPEN) for test_id, defects in linked.items()}
    known = {test_id: defects for test_id, defects in known.items() if defects}
    # A failing required test is accepted when all its linked defects are open and, counted
    # under defects, within the limits.
    candidates = {
        test.id: linked[test.id]
        for test in facts.tests
        if policy.known_failures == "allow"
        and test.required
        and test.latest is not None
        and test.latest.is_failing
        and test.id not in quarantined
        and linked.get(test.id)
        and all(defect.state is DefectState.OPEN for defect in linked[test.id])
    }
    counted_defects = {defect.number: defect for defect in facts.defects}
    for defects in candidates.values():
        counted_defects.update((defect.number, defect) for defect in defects)
    defects_criterion, blocking_defects = _defects(policy, list(counted_defects.values()), facts.resolved_before_start)
    over = {defect.number for defect in blocking_defects}
    accepted = {test_id for test_id, defects in candidates.items() if not any(d.number in over for d in defects)}
    if accepted:
        accepted_text = f"{len(accepted):,} accepted known {'failure' if len(accepted) == 1 else 'failures'}"
        defects_criterion = defects_criterion._replace(
            summary=f"{defects_criterion.summary}; {accepted_text}",
            numbers=defects_criterion.numbers._replace(accepted_known=len(accepted)),
        )
    scan = _scan(facts.tests, facts.passing, bool(policy.required), known, set(quarantined), accepted)
    warnings = [f"required selector {selector!r} matches no test" for selector in facts.unmatched_selectors]

    tests_criterion = _required_tests(facts, scan)
    coverage_criterion, untested = _coverage(policy, scan, facts.missing_exact_ids)
    signoff_criterion, missing, rejections = _signoff(facts)
    includes_criterion = _includes(facts) if policy.includes else None
    criteria = Criteria(tests_criterion, defects_criterion, coverage_criterion, signoff_criterion, includes_criterion)

    gate_green = all(criterion.met for criterion in criteria.before_signoff)
    status = _status(criteria, rejections)
    lifecycle = lifecycle_state(
        today=today,
        start=facts.start_date,
        target=facts.target_date,
        completed=status is GateStatus.COMPLETE,
        closed=facts.closed,
    )
    overdue = lifecycle is Lifecycle.OVERDUE
    days_left = (facts.target_date - today).days if facts.target_date else None
    metrics = _metrics(facts, now, today, gate_green, scan, coverage_criterion, defects_criterion)
    if metrics.forecast.at_risk and not gate_green:
        warnings.append(f"forecast: {metrics.forecast.reason}")
    failing = scan.failing_required if not tests_criterion.met else []
    triage = _triage(facts, known, accepted, quarantined)
    return Verdict(
        milestone=facts.name,
        status=status,
        overdue=overdue,
        target_date=facts.target_date,
        days_left=days_left,
        criteria=criteria,
        blocking=Blocking(failing, blocking_defects, untested, missing, rejections),
        metrics=metrics,
        warnings=warnings,
        triage=triage,
        lifecycle=lifecycle,
        start_date=facts.start_date,
        completion=completion(criteria, policy),
    )


def active_quarantine(facts: MilestoneFacts, today: date) -> dict[int, QuarantineFact]:
    """The quarantined tests whose entry has not expired (an entry lasts through its expiry date)."""
    return {entry.test_id: entry for entry in facts.quarantine if entry.expires_on is None or entry.expires_on >= today}


def _linked_defects(facts: MilestoneFacts) -> dict[int, tuple[DefectFact, ...]]:
    by_number = {defect.number: defect for defect in facts.linked_defects}
    linked: dict[int, list[DefectFact]] = defaultdict(list)
    for link in facts.links:
        defect = by_number.get(link.defect)
        if defect is not None:
            linked[link.test_id].append(defect)
    return {test_id: tuple(sorted(defects, key=_defect_order)) for test_id, defects in linked.items()}


def _defect_order(defect: DefectFact) -> tuple[int, int]:
    return SEVERITY_ORDER.index(defect.severity), defect.number


DEFECT_TESTS = 100
CLUSTER_TESTS = 100


def _triage(
    facts: MilestoneFacts,
    known: dict[int, tuple[DefectFact, ...]],
    accepted: Set[int],
    quarantined: dict[int, QuarantineFact],
) -> Triage:
    failing = [
        test
        for test in facts.tests
        if test.latest is not None and test.latest.is_failing and test.id not in quarantined
    ]
    failing.sort(key=lambda test: (not test.required, test.display_name))
    new = [test.display_name for test in failing if test.id not in known]
    known_failures = [
        KnownFailure(test.display_name, test.latest, test.required, list(known[test.id]), test.id in accepted)
        for test in failing
        if test.id in known and test.latest is not None
    ]
    by_test = {test.id: test for test in facts.tests}
    quarantine = [
        QuarantinedTest(
            entry.test,
            entry.source,
            entry.reason,
            entry.added_by,
            entry.added_at,
            entry.expires_on,
            by_test[entry.test_id].latest if entry.test_id in by_test else None,
        )
        for entry in sorted(quarantined.values(), key=lambda entry: entry.test)
    ]
    return Triage(
        facts.policy.known_failures,
        new,
        known_failures,
        clusters(failing),
        quarantine,
        _defect_tests(facts),
    )


def clusters(failing: Sequence[TestFact]) -> list[Cluster]:
    """Failing tests grouped by cause, biggest first; a test without a recorded cause is
    grouped by its message's first line, normalised."""
    groups: dict[str, list[TestFact]] = defaultdict(list)
    for test in failing:
        signature = test.cause or normalise(first_line(test.message))[:300] or "no failure message"
        groups[signature].append(test)
    found = []
    for signature, tests in groups.items():
        firsts = [ref for test in tests if (ref := test.failing_since or test.last_failed) is not None]
        lasts = [test.last_failed for test in tests if test.last_failed is not None]
        found.append(
            Cluster(
                signature,
                len(tests),
                min(firsts, key=_launch_order) if firsts else None,
                max(lasts, key=_launch_order) if lasts else None,
                [test.display_name for test in tests[:CLUSTER_TESTS]],
            )
        )
    found.sort(key=lambda cluster: (-cluster.count, cluster.signature))
    return found


def _launch_order(launch: LaunchRef) -> tuple[datetime, int]:
    return (launch.finished_at or datetime.min.replace(tzinfo=UTC), launch.id)


def _defect_tests(facts: MilestoneFacts) -> list[DefectTests]:
    tests: dict[int, list[LinkFact]] = defaultdict(list)
    for link in facts.links:
        tests[link.defect].append(link)
    entries = []
    for defect in sorted(facts.linked_defects, key=_defect_order):
        # By name, and tests that show the same name (a.b + c, a + b.c) by id: always in one order.
        links = sorted(tests.get(defect.number, []), key=lambda link: (link.test, link.test_id))
        if not links:
            continue
        resolved = facts.resolved_at.get(defect.number)
        ready = (
            defect.state is DefectState.RESOLVED
            and resolved is not None
            and all(
                link.latest is TestStatus.PASSED and link.last_run_at is not None and link.last_run_at > resolved
                for link in links
            )
        )
        shown = [AffectedTest(link.test, link.latest) for link in links[:DEFECT_TESTS]]
        entries.append(DefectTests(defect, len(links), shown, ready))
    return entries


def completion(criteria: Criteria, policy: MilestonePolicy) -> int | None:
    """0-100, the weighted mean of the criteria's progress where it is known; floored, so that
    100 means every criterion that applies is all the way there."""
    weights = policy.progress
    weighted = [
        (weight, progress)
        for criterion, weight in (
            (criteria.tests, weights.tests),
            (criteria.coverage, weights.coverage),
            (criteria.defects, weights.defects),
            (criteria.signoff, weights.signoff),
            (criteria.includes, weights.includes),
        )
        if criterion is not None and weight > 0 and (progress := criterion.numbers.progress) is not None
    ]
    total = sum(weight for weight, _ in weighted)
    if not total:
        return None
    return math.floor(100 * sum(weight * progress for weight, progress in weighted) / total + 1e-9)


def _includes(facts: MilestoneFacts) -> Criterion[IncludesNumbers]:
    allow_closed = facts.policy.allow_closed
    included = [
        IncludedMilestone(
            name=child.name,
            status=child.status,
            lifecycle=child.lifecycle,
            completion=child.completion,
            counts=child.lifecycle is Lifecycle.COMPLETED or (allow_closed and child.lifecycle is Lifecycle.CLOSED),
        )
        for child in sorted(facts.included, key=lambda child: child.name)
    ]
    complete = sum(child.counts for child in included)
    numbers = IncludesNumbers(included, complete, allow_closed)
    name = "includes"
    if not included:
        return Criterion(name, CriterionResult.NO_DATA, "no included milestone exists yet", numbers)
    summary = f"{complete} of {plural(len(included), 'included milestone')} complete"
    if complete == len(included):
        return Criterion(name, CriterionResult.MET, summary, numbers)
    return Criterion(name, CriterionResult.NOT_MET, summary, numbers)


def _required_tests(facts: MilestoneFacts, scan: _Scan) -> Criterion[TestsNumbers]:
    policy = facts.policy
    executed = scan.executed
    passed = scan.tally[TestStatus.PASSED]
    overall = scan.pass_rate
    required_rate = scan.required_passed / scan.required_executed if scan.required_executed else None
    failing = len(scan.failing_required)
    numbers = TestsNumbers(
        pass_rate=overall,
        pass_rate_threshold=policy.pass_rate,
        executed=executed,
        passed=passed,
        required=scan.required,
        required_executed=scan.required_executed,
        required_passed=scan.required_passed,
        required_pass_rate=required_rate,
        required_pass_rate_threshold=policy.required_pass_rate,
        required_failing=failing,
        quarantined=scan.quarantined,
        accepted_known=scan.accepted,
        known=len(facts.tests) + facts.passing.total,
    )
    name = "required_tests"
    if not executed or overall is None:
        return Criterion(name, CriterionResult.NO_DATA, "no test results yet", numbers)
    problems = []
    if required_rate is not None and required_rate < policy.required_pass_rate:
        problems.append(f"{failing:,} of {scan.required_executed:,} required tests failing")
    if overall < policy.pass_rate:
        problems.append(f"pass rate {percent(overall)} below {percent(policy.pass_rate)}")
    if problems:
        return Criterion(name, CriterionResult.NOT_MET, "; ".join(problems), numbers)
    if policy.required and not scan.required and not facts.missing_exact_ids:
        return Criterion(name, CriterionResult.NO_DATA, "the required selectors match no test", numbers)
    if policy.required and not scan.required_executed:
        summary = f"pass rate {percent(overall)}; no required test has run yet"
    elif policy.required:
        summary = (
            f"{scan.required_passed:,} of {scan.required_executed:,} required tests pass; pass rate {percent(overall)}"
        )
    else:
        summary = f"pass rate {percent(overall)} (threshold {percent(policy.pass_rate)})"
    left_out = []
    if scan.quarantined:
        left_out.append(f"{scan.quarantined:,} quarantined")
    if scan.accepted:
        left_out.append(f"{scan.accepted:,} accepted known {'failure' if scan.accepted == 1 else 'failures'}")
    if left_out:
        summary += f" ({', '.join(left_out)} left out)"
    return Criterion(name, CriterionResult.MET, summary, numbers)


def _defects(
    policy: MilestonePolicy, defects: Sequence[DefectFact], resolved_before_start: frozenset[int]
) -> tuple[Criterion[DefectsNumbers], list[DefectFact]]:
    def blocks(defect: DefectFact) -> bool:
        if defect.state is DefectState.OPEN:
            return True
        return policy.require_verified and defect.state is DefectState.RESOLVED

    counted: dict[Severity, list[DefectFact]] = defaultdict(list)
    for defect in defects:
        if blocks(defect):
            counted[defect.severity].append(defect)
    blocking: list[DefectFact] = []
    over = []
    to_close = 0
    for severity in SEVERITY_ORDER:
        limit = policy.max_open_defects.get(severity)
        found = counted.get(severity, [])
        if limit is not None and len(found) > limit:
            blocking.extend(sorted(found, key=lambda defect: defect.number))
            over.append(f"{len(found)} {severity.value} (max {limit})")
            to_close += len(found) - limit
    limited = [defect for defect in defects if defect.severity in policy.max_open_defects]
    unresolved = sum(1 for defect in limited if blocks(defect))
    resolved = sum(1 for defect in limited if not blocks(defect) and defect.number not in resolved_before_start)
    numbers = DefectsNumbers(
        open={severity.value: len(counted.get(severity, [])) for severity in SEVERITY_ORDER},
        limits={severity.value: limit for severity, limit in policy.max_open_defects.items()},
        require_verified=policy.require_verified,
        blocking=len(blocking),
        to_close=to_close,
        resolved=resolved,
        unresolved=unresolved,
    )
    if over:
        return Criterion(
            "defects", CriterionResult.NOT_MET, "open defects over the limit: " + ", ".join(over), numbers
        ), blocking
    open_total = sum(len(found) for found in counted.values())
    summary = "no open defects" if not open_total else f"{open_total} open, none over the limits"
    return Criterion("defects", CriterionResult.MET, summary, numbers), blocking


def _coverage(
    policy: MilestonePolicy, scan: _Scan, missing_ids: Sequence[str]
) -> tuple[Criterion[CoverageNumbers], list[UntestedArea]]:
    total = scan.scope + len(missing_ids)
    run = scan.scope_run
    ratio = run / total if total else None
    by_suite = dict(scan.untested)
    if missing_ids:
        by_suite[NEVER_REPORTED] = [*by_suite.get(NEVER_REPORTED, []), *missing_ids]
    untested = [UntestedArea(suite, sorted(names)) for suite, names in sorted(by_suite.items())]
    numbers = CoverageNumbers(run=run, total=total, coverage=ratio, threshold=policy.coverage)
    if ratio is None:
        return Criterion("coverage", CriterionResult.NO_DATA, "no tests known for this milestone yet", numbers), []
    summary = f"{run:,} of {total:,} {'required ' if policy.required else ''}tests run ({percent(ratio)})"
    if ratio < policy.coverage:
        return Criterion("coverage", CriterionResult.NOT_MET, summary, numbers), untested
    return Criterion("coverage", CriterionResult.MET, summary, numbers), untested


def counted_approvals(facts: MilestoneFacts) -> list[DecisionFact]:
    """The standing approvals that count: by an approver, and not the requester's own when
    the policy prevents self-approval."""
    approvers = set(facts.approvers)
    return [
        decision
        for decision in facts.decisions
        if decision.decision is Decision.APPROVE
        and decision.user_id in approvers
        and not (facts.policy.signoff.prevent_self_approval and decision.user_id == decision.requested_by)
    ]


def _signoff(facts: MilestoneFacts) -> tuple[Criterion[SignoffNumbers], list[str], list[DecisionFact]]:
    signoff = facts.policy.signoff
    approvers = list(dict.fromkeys(facts.approvers))
    approving = counted_approvals(facts)
    counted = {decision.user_id: decision for decision in approving}
    approvals = list(counted)
    # A rejection blocks until its author withdraws it, even one no longer an approver.
    rejections = [decision for decision in facts.decisions if decision.decision is Decision.REJECT]
    counted.update((decision.user_id, decision) for decision in rejections)
    unresolved = list(facts.unresolved_approvers)
    quorum = (
        len(approvers)
        if signoff.quorum == "all"
        else signoff.quorum
        if unresolved
        else min(signoff.quorum, len(approvers))
    )
    missing = [user for user in approvers if user not in counted]
    numbers = SignoffNumbers(
        approvals=len(approvals),
        quorum=quorum,
        rejections=len(rejections),
        approvers=approvers,
        unresolved=unresolved,
    )
    if rejections:
        who = ", ".join(decision.user_id for decision in rejections)
        return Criterion("signoff", CriterionResult.NOT_MET, f"rejected by {who}", numbers), missing, rejections
    if not approvers and not unresolved:
        return Criterion("signoff", CriterionResult.MET, "no sign-off required", numbers), [], []
    # A group whose members are unknown may hold approvers still to approve: with "all",
    # or when the known ones cannot reach the quorum, the sign-off cannot be met yet.
    if unresolved and (signoff.quorum == "all" or len(approvers) < quorum):
        groups = ", ".join(unresolved)
        summary = f"{len(approvals)} approvals; members of {groups} not known yet"
        return Criterion("signoff", CriterionResult.NOT_MET, summary, numbers), missing, []
    summary = f"{len(approvals)} of {quorum} approvals"
    if len(approvals) >= quorum:
        return Criterion("signoff", CriterionResult.MET, summary, numbers), [], []
    return Criterion("signoff", CriterionResult.NOT_MET, summary, numbers), missing, []


def _status(criteria: Criteria, rejections: list[DecisionFact]) -> GateStatus:
    tests, defects, coverage, includes = criteria.tests, criteria.defects, criteria.coverage, criteria.includes
    if tests.result is CriterionResult.NOT_MET or defects.result is CriterionResult.NOT_MET or rejections:
        return GateStatus.BLOCKED
    if (
        includes is not None
        and includes.result is CriterionResult.NOT_MET
        and any(child.status is GateStatus.BLOCKED for child in includes.numbers.milestones)
    ):
        # A child turning red turns the parent red.
        return GateStatus.BLOCKED
    if not tests.numbers.executed and coverage.result is CriterionResult.NO_DATA:
        return GateStatus.NO_DATA
    if all(criterion.met for criterion in criteria.before_signoff):
        return GateStatus.COMPLETE if criteria.signoff.met else GateStatus.READY_FOR_SIGNOFF
    return GateStatus.AT_RISK


def _metrics(
    facts: MilestoneFacts,
    now: datetime,
    today: date,
    gate_green: bool,
    scan: _Scan,
    coverage: Criterion[CoverageNumbers],
    defects: Criterion[DefectsNumbers],
) -> Metrics:
    tally = {status.value: scan.tally[status] for status in TestStatus}
    tally["not_run"] = scan.tally[None]
    tally["total"] = len(facts.tests) + facts.passing.total
    pass_rate = scan.pass_rate

    open_by_severity = {severity.value: 0 for severity in SEVERITY_ORDER}
    critical = {"open": 0, "resolved": 0}
    for defect in facts.defects:
        if defect.state is DefectState.OPEN:
            open_by_severity[defect.severity.value] += 1
        if defect.severity is Severity.CRITICAL:
            critical["open" if defect.state is DefectState.OPEN else "resolved"] += 1

    rates = [rate for launch in facts.recent_launches if (rate := launch.pass_rate) is not None]
    # Rounded as snapshots store it, or a steady rate would show a phantom slope.
    live_rate = None if pass_rate is None else round(pass_rate, 6)
    points = [*facts.trend, TrendPoint(now, live_rate, defects.numbers.to_close)]
    return Metrics(
        pass_rate=pass_rate,
        direction=direction(rates),
        tests=tally,
        defects_open=open_by_severity,
        critical=critical,
        coverage=coverage.numbers.coverage,
        required_total=scan.required,
        required_run=scan.required_executed,
        regressions=scan.regressions,
        flaky=sorted(scan.flaky),
        forecast=forecast(
            points,
            pass_rate_threshold=facts.policy.pass_rate,
            gate_met=gate_green,
            today=today,
            target_date=facts.target_date,
        ),
    )


def _failing(test: TestFact, known: tuple[DefectFact, ...] = ()) -> FailingTest:
    assert test.latest is not None
    return FailingTest(
        test.display_name, test.suite or "", test.latest, test.failing_since, test.message, known, test.cause
    )
