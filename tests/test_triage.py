"""Known failures, failure clusters and quarantine, on real reports and real issue payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core import services
from core.enums import DefectState, DeliveryStatus, GateStatus, Severity, TestStatus
from core.gate import DefectFact, LinkFact, MilestoneFacts, TestFact, evaluate
from core.ingest import LaunchSource
from core.junit import parse_reports
from core.links import affected_selectors
from core.models import Defect, DefectLink
from core.policy import MilestonePolicy
from core.report import render_verdict, verdict_json
from tests.conftest import JUNIT
from tests.github import fixture, running_app, settings_for

REPO = "Codertocat/Hello-World"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
POLICY = """
plans:
  pytest: {}
milestones:
  "v1.0":
    plans: [pytest]
    required: ["tests.test_lib.*"]
    coverage: 0.7
    known_failures: allow
    max_open_defects: {critical: 0, high: 0}
    signoff: {approvers: [U1]}
"""
FAILING = ["tests.test_lib.test_always_fail", "tests.test_lib.test_error"]


@pytest.fixture
async def hooks(db):
    async with running_app(settings_for(db)) as running:
        yield running


def issue_payload(action: str, body: str | None, *, labels: list[str], updated_at: str, state: str = "open") -> dict:
    payload = fixture("issues", "opened", action=action)
    payload["issue"].update(
        body=body, labels=[{"name": name} for name in labels], updated_at=updated_at, state=state, number=101
    )
    return payload


async def pytest_launch(source: str, at: datetime = T0):
    return await services.record_launch(
        parse_reports([JUNIT / "python-xunit-pytest.xml"]),
        LaunchSource(REPO, "pytest", source, commit_sha=f"sha-{source}", finished_at=at),
    )


async def gate():
    return await services.get_verdict(REPO, "v1.0")


# Affects lines -----------------------------------------------------------------


def test_affects_lines_name_selectors_and_required_ids_count_verbatim():
    body = (
        "Refunds crash.\r\n"
        "Affects: com.acme.shop.checkout.PaymentTest.testRefund, `tests/checkout/**`\n"
        "- **Affects:** tests.cart::test_add plan:smoke\n"
        "Seen in com.acme.Other.test too, and com.acme.Unrelated.test never."
    )
    assert affected_selectors(body, ["com.acme.Other.test", "com.acme.Missing.test"]) == [
        "com.acme.shop.checkout.PaymentTest.testRefund",
        "tests/checkout/**",
        "tests.cart::test_add",
        "com.acme.Other.test",
    ]
    assert affected_selectors(None) == []
    assert affected_selectors("It looks like you accidently spelled 'commit' with two 't's.") == []


# Known failures ------------------------------------------------------------------


async def test_a_defect_naming_two_failing_tests_makes_them_known_and_the_gate_ready(hooks):
    assert (await hooks.deliver("milestone", fixture("milestone", "created"))).status is DeliveryStatus.DONE
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok, load.errors
    await pytest_launch("run-1")
    before = await gate()
    assert before.status is GateStatus.BLOCKED
    assert before.triage.new == FAILING and before.triage.known == []

    body = "Both fail since the refactoring.\nAffects: tests.test_lib.test_always_fail, tests/test_lib/test_error\n"
    delivery = await hooks.deliver(
        "issues", issue_payload("opened", body, labels=["bug"], updated_at="2026-11-02T10:00:00Z")
    )
    assert delivery.status is DeliveryStatus.DONE
    defect = await Defect.get(number=101)
    assert defect.affects == ["tests.test_lib.test_always_fail", "tests/test_lib/test_error"]
    assert await DefectLink.filter(defect=defect).count() == 2

    ready = await gate()
    assert ready.status is GateStatus.READY_FOR_SIGNOFF
    assert ready.triage.new == []
    assert [(known.name, known.accepted, [d.number for d in known.defects]) for known in ready.triage.known] == [
        (FAILING[0], True, [101]),
        (FAILING[1], True, [101]),
    ]
    tests = ready.criteria.tests.numbers
    assert (tests.accepted_known, tests.required_failing, tests.pass_rate) == (2, 0, 1.0)
    assert ready.criteria.defects.numbers.accepted_known == 2
    assert ready.criteria.defects.summary == "1 open, none over the limits; 2 accepted known failures"
    assert [entry.defect.number for entry in ready.triage.defects] == [101]
    assert [(test.name, test.status) for test in ready.triage.defects[0].tests] == [
        (FAILING[0], TestStatus.FAILED),
        (FAILING[1], TestStatus.FAILED),
    ]
    text = render_verdict(ready)
    assert "failing, known: #101 [none]" in text and "accepted known failures" in text
    assert verdict_json(ready)["triage"]["known"][0]["defects"][0]["number"] == 101

    exported = {state.id: state.linked_defect for state in await services.test_states(REPO, "v1.0")}
    assert [exported[name] for name in FAILING] == [101, 101]
    assert sum(number is not None for number in exported.values()) == 2

    closed = issue_payload("closed", body, labels=["bug"], updated_at="2026-11-03T10:00:00Z", state="closed")
    await hooks.deliver("issues", closed)
    again = await gate()
    assert again.status is GateStatus.BLOCKED
    assert again.triage.new == FAILING and again.triage.known == []
    assert [test.name for test in again.blocking.failing_tests] == FAILING


async def test_with_known_failures_blocking_the_failures_stay_red_but_show_their_defect(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    load, _ = await services.apply_policy_file(REPO, POLICY.replace("known_failures: allow", "known_failures: block"))
    assert load.ok
    body = "Affects: tests.test_lib.test_always_fail"
    await hooks.deliver(
        "issues", issue_payload("opened", body, labels=["bug", "P0"], updated_at="2026-11-02T10:00:00Z")
    )
    # The defect came first: the test is linked when a launch first brings it.
    await pytest_launch("run-1")
    verdict = await gate()
    assert verdict.status is GateStatus.BLOCKED
    assert verdict.triage.new == [FAILING[1]]
    assert [(known.name, known.accepted) for known in verdict.triage.known] == [(FAILING[0], False)]
    # New, untriaged failures first.
    assert [(test.name, [d.number for d in test.known]) for test in verdict.blocking.failing_tests] == [
        (FAILING[1], []),
        (FAILING[0], [101]),
    ]
    assert "failing, known: #101 [critical]" in render_verdict(verdict)


async def test_a_resolved_defect_whose_tests_pass_again_is_ready_to_verify(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok
    await pytest_launch("run-1")
    body = "Affects: tests.test_lib.test_always_pass"
    await hooks.deliver("issues", issue_payload("opened", body, labels=["bug"], updated_at="2026-11-02T10:00:00Z"))
    closed = issue_payload("closed", body, labels=["bug"], updated_at="2026-11-03T10:00:00Z", state="closed")
    closed["issue"]["closed_at"] = "2026-11-03T10:00:00Z"
    await hooks.deliver("issues", closed)
    # It passed before the fix was closed: nothing to verify yet.
    assert (await gate()).triage.ready_to_verify == []
    await pytest_launch("run-2", at=datetime(2026, 11, 4, tzinfo=UTC))
    ready = (await gate()).triage.ready_to_verify
    assert [(entry.defect.number, entry.total) for entry in ready] == [(101, 1)]


async def test_editing_the_body_moves_the_links(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok
    await pytest_launch("run-1")
    at = datetime(2026, 11, 2, 10, tzinfo=UTC)
    for step, body in enumerate(["Affects: tests/test_lib/**", "Affects: tests.test_lib.test_error", ""]):
        stamp = (at + timedelta(hours=step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await hooks.deliver("issues", issue_payload("edited", body, labels=["bug"], updated_at=stamp))
        links = await DefectLink.filter(defect__number=101).count()
        assert links == [9, 1, 0][step]  # custom_classname is not under tests/test_lib


async def test_a_required_id_named_in_a_body_links_while_it_is_required(hooks):
    """The body is kept: when the policy's required tests change, its links are worked out again."""
    await hooks.deliver("milestone", fixture("milestone", "created"))
    loose = POLICY.replace('required: ["tests.test_lib.*"]', 'required: ["tests.test_lib.test_pass"]')
    await services.apply_policy_file(REPO, loose)
    await pytest_launch("run-1")
    body = "Seen on CI since Monday: tests.test_lib.test_error raises KeyError."
    await hooks.deliver("issues", issue_payload("opened", body, labels=["bug"], updated_at="2026-11-02T10:00:00Z"))
    assert await DefectLink.filter(defect__number=101).count() == 0  # not required: just words
    exact = loose.replace('["tests.test_lib.test_pass"]', '["tests.test_lib.test_pass", "tests.test_lib.test_error"]')
    await services.apply_policy_file(REPO, exact)
    links = await DefectLink.filter(defect__number=101).prefetch_related("test_case")
    assert [link.test_case.name for link in links] == ["test_error"]
    assert [known.name for known in (await gate()).triage.known] == ["tests.test_lib.test_error"]
    await services.apply_policy_file(REPO, loose)
    assert await DefectLink.filter(defect__number=101).count() == 0
    assert (await Defect.get(number=101)).affects == []


# The gate and causes as pure functions -------------------------------------------------


def facts_with(*, severity: Severity, known_failures: str = "allow") -> MilestoneFacts:
    policy = MilestonePolicy(required=["a.*"], known_failures=known_failures, coverage=0.5)
    tests = [
        TestFact(1, "a", "pays", "a", True, TestStatus.FAILED, cause="ConnectionError: refused"),
        TestFact(2, "a", "ships", "a", True, TestStatus.PASSED, recent="PF"),
    ]
    defect = DefectFact(7, "refunds", severity, DefectState.OPEN)
    return MilestoneFacts(
        "v1",
        policy,
        tests=tests,
        links=[LinkFact(7, 1, "a.pays", TestStatus.FAILED, T0)],
        linked_defects=[defect],
    )


def test_a_known_failure_is_accepted_only_while_its_defect_is_within_the_limits() -> None:
    within = evaluate(facts_with(severity=Severity.MEDIUM), T0)
    assert within.criteria.tests.met and within.status is GateStatus.COMPLETE
    assert [known.accepted for known in within.triage.known] == [True]
    assert within.criteria.defects.numbers.open["medium"] == 1  # counted once, under defects
    over = evaluate(facts_with(severity=Severity.CRITICAL), T0)
    assert over.status is GateStatus.BLOCKED and not over.criteria.tests.met
    assert [known.accepted for known in over.triage.known] == [False]
    assert [defect.number for defect in over.blocking.defects] == [7]
    blocked = evaluate(facts_with(severity=Severity.MEDIUM, known_failures="block"), T0)
    assert not blocked.criteria.tests.met and blocked.criteria.defects.numbers.open["medium"] == 0


def test_a_defects_tests_that_show_one_name_come_in_one_order_whatever_order_the_links_came_in() -> None:
    # "a.b" + "c" and "a" + "b.c" both show as a.b.c: told apart by id, so pages and messages
    # do not swap their results from one reading to the next.
    tests = [
        TestFact(3, "a.b", "c", "a", True, TestStatus.FAILED),
        TestFact(4, "a", "b.c", "a", True, TestStatus.PASSED),
    ]
    links = [LinkFact(7, 3, "a.b.c", TestStatus.FAILED, T0), LinkFact(7, 4, "a.b.c", TestStatus.PASSED, T0)]
    defect = DefectFact(7, "refunds", Severity.MEDIUM, DefectState.OPEN)
    policy = MilestonePolicy(required=["a.*"], coverage=0.5)
    shown = [
        [
            test.status
            for test in evaluate(MilestoneFacts("v1", policy, tests=tests, links=order, linked_defects=[defect]), T0)
            .triage.defects[0]
            .tests
        ]
        for order in (links, links[::-1])
    ]
    assert shown == [[TestStatus.FAILED, TestStatus.PASSED]] * 2


def test_causes_of_real_reports() -> None:
    report = parse_reports([JUNIT / "external_java_pulsar-test-report.xml", JUNIT / "python-xunit-unittest.xml"])
    causes = {case.name: case.cause for case in report.cases.values() if case.cause}
    assert causes["testVersionStrings"].signature == "java.lang.AssertionError: expected <value> but found <value>"
    assert causes["testVersionStrings"].frame.startswith(
        "org.apache.pulsar.AddMissingPatchVersionTest.testVersionStrings"
    )
    assert {name: cause.signature for name, cause in causes.items() if name != "testVersionStrings"} == {
        "test_always_fail": "AssertionError: failed",
        "test_error": "Exception: error",
    }
    jest = parse_reports([JUNIT / "test-errors_jest_jest-test-results.xml"])
    # Two suites that failed to run for one reason: one cause.
    assert len({case.cause.signature for case in jest.cases.values() if case.cause}) == 1
