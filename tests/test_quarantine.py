"""Flaky quarantine and failure clusters as people meet them: launches, the gate, Slack and the
check run, with Slack's side played by the loopback fake."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from core import services
from core.clock import utcnow
from core.ingest import LaunchSource
from core.junit import parse_stream
from core.models import Launch, MilestoneTest, Quarantine, TestResult
from core.policy import FlakyConfig
from core.quarantine import Move, auto_move
from integrations.github.check_output import gate_check
from tests.slack import CHANNEL_ID
from tests.test_slack_app import REPO, Slack, report, section_texts, slack_app
from tests.test_slack_signoff import notices

ANN, EVE, ADMIN = "U0ANN", "U0EVE", "U0ADMIN"
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["plan:smoke"]
    flaky: {quarantine: auto, after: 3, release_after: 10}
    signoff: {approvers: [U0ANN]}
"""
FLAKY = "com.acme.Checkout.test_0"
runs = iter(range(1, 1_000_000))


@pytest.fixture
async def slack(db: str):
    async with slack_app(db) as running:
        running.fake.add_user(ANN, "ann")
        running.fake.add_user(EVE, "eve")
        running.fake.add_user(ADMIN, "root", is_admin=True)
        yield running


async def launch(flaky_fails: bool, tests: int = 20) -> None:
    run = next(runs)
    cases = {f"test_{n}": "failed" if n == 0 and flaky_fails else "passed" for n in range(tests)}
    await services.record_launch(
        report(cases),
        LaunchSource(
            REPO,
            "smoke",
            f"run-{run}",
            commit_sha=f"sha{run:04d}",
            branch="main",
            finished_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(hours=run),
        ),
    )


async def linked_release(slack: Slack, policy: str = POLICY) -> None:
    load, _ = await services.apply_policy_file(REPO, policy)
    assert load.ok, load.errors
    await services.save_milestone(REPO, "v2.0", target_date=utcnow().date() + timedelta(days=30))
    await launch(flaky_fails=False)
    await slack.answer("link acme/shop")
    await notices(slack)  # the first look: nothing said


def quarantine_alerts(slack: Slack) -> list[str]:
    return [message["text"] for message in slack.fake.messages(CHANNEL_ID) if "quarantine" in message["text"]]


def test_the_flaky_rule_quarantines_after_flaky_runs_and_releases_after_passes() -> None:
    auto = FlakyConfig(quarantine="auto", after=3, release_after=10)
    assert auto_move(auto, quarantined_by_rule=False, recent="FPFP", flaky_recent="YYYN") is Move.QUARANTINE
    assert auto_move(auto, quarantined_by_rule=False, recent="FPPP", flaky_recent="YYNN") is None
    assert auto_move(auto, quarantined_by_rule=True, recent="PPPPPPPPPF", flaky_recent="NNNNNNNNYY") is None
    assert auto_move(auto, quarantined_by_rule=True, recent="PPPPPPPPPP", flaky_recent="NNNNNNNNNY") is Move.RELEASE
    # Skipped runs neither pass nor break the streak.
    assert auto_move(auto, quarantined_by_rule=True, recent="PPSPPPPPPP", flaky_recent="NNNNNNNNNN") is None
    off = FlakyConfig()
    assert auto_move(off, quarantined_by_rule=False, recent="FPFP", flaky_recent="YYYY") is None
    assert auto_move(off, quarantined_by_rule=True, recent="F", flaky_recent="Y") is Move.RELEASE


async def test_a_flipping_test_is_quarantined_leaves_the_pass_rate_and_ten_passes_release_it(slack: Slack) -> None:
    await linked_release(slack)
    for fails in (True, False):
        await launch(flaky_fails=fails)
    before = await services.get_verdict(REPO, "v2.0")
    assert before.triage.quarantined == [] and before.criteria.tests.numbers.pass_rate == 1.0
    await launch(flaky_fails=True)  # the fourth launch, its third flip
    verdict = await services.get_verdict(REPO, "v2.0")
    [entry] = verdict.triage.quarantined
    assert (entry.name, entry.source, entry.reason) == (FLAKY, "auto", "flaky in 3 of its last 4 runs (rule: 3)")
    tests = verdict.criteria.tests.numbers
    # Failing and required, yet neither in the pass rate nor among the required failures.
    assert (tests.pass_rate, tests.required_failing, tests.quarantined) == (1.0, 0, 1)
    assert verdict.criteria.tests.met and verdict.blocking.failing_tests == []
    # Coverage still counts it as run.
    assert verdict.criteria.coverage.numbers.run == 20
    await notices(slack)
    assert quarantine_alerts(slack) == ["v2.0 (acme/shop): 1 test quarantined"]
    alert = slack.fake.messages(CHANNEL_ID)[-1]
    assert f"`{FLAKY}` went into quarantine in *v2.0* (acme/shop): flaky in 3 of its last 4 runs" in section_texts(
        alert
    )

    for _ in range(9):
        await launch(flaky_fails=False)
    assert len((await services.get_verdict(REPO, "v2.0")).triage.quarantined) == 1
    await launch(flaky_fails=False)  # the tenth pass in a row
    assert (await services.get_verdict(REPO, "v2.0")).triage.quarantined == []
    [row] = await Quarantine.all()
    assert (row.added_by, row.released_by, row.release_reason) == (
        "the flaky rule",
        "the flaky rule",
        "passed 10 runs in a row",
    )
    await notices(slack)
    await notices(slack)
    assert quarantine_alerts(slack) == [
        "v2.0 (acme/shop): 1 test quarantined",
        "v2.0 (acme/shop): 1 test out of quarantine",
    ]


async def test_approvers_and_admins_keep_the_quarantine_in_slack_unless_the_policy_lists_it(slack: Slack) -> None:
    await linked_release(slack, POLICY.replace("    flaky: {quarantine: auto, after: 3, release_after: 10}\n", ""))
    refused = await slack.answer(f"quarantine v2.0 add {FLAKY}", user_id=EVE)
    assert "Only v2.0's approvers and workspace admins can change its quarantine" in refused["text"]
    unknown = await slack.answer("quarantine v2.0 add com.acme.Nope.test", user_id=ANN)
    assert "No test of v2.0 is called com.acme.Nope.test" in unknown["text"]
    added = await slack.answer(f"quarantine v2.0 add {FLAKY} times out on CI runners", user_id=ANN)
    text = section_texts(added)
    assert f"Quarantined by <@{ANN}>: `{FLAKY}`" in text
    assert f"`{FLAKY}` passed · by {ANN} on " in text and "times out on CI runners" in text
    listed = await slack.answer("quarantine v2.0")
    assert "v2.0 · 1 test in quarantine" in listed["text"]
    removed = await slack.answer(f"quarantine v2.0 remove {FLAKY}", user_id=ADMIN)
    assert f"Released by <@{ADMIN}>: `{FLAKY}`" in section_texts(removed)
    assert (await services.get_verdict(REPO, "v2.0")).triage.quarantined == []
    history = await Quarantine.all().order_by("id")
    assert [(row.added_by, row.reason, row.released_by) for row in history] == [(ANN, "times out on CI runners", ADMIN)]

    owned = POLICY.replace(
        "    flaky:",
        '    quarantine: [{test: "com.acme.Checkout.test_1", reason: "JIRA-7", expires: 2099-01-01}]\n    flaky:',
    )
    load, _ = await services.apply_policy_file(REPO, owned)
    assert load.ok, load.errors
    policy = await slack.answer(f"quarantine v2.0 add {FLAKY}", user_id=ADMIN)
    assert "V2.0's quarantine is listed in acme/shop's .github/milestones.yml; change it there" in policy["text"]
    listed = section_texts(await slack.answer("quarantine v2.0"))
    assert "`com.acme.Checkout.test_1` passed · by the policy file on " in listed
    assert "JIRA-7; until 2099-01-01" in listed


async def test_an_expired_entry_counts_again(slack: Slack) -> None:
    policy = POLICY.replace(
        "    flaky:", '    quarantine: [{test: "com.acme.Checkout.test_0", expires: 2020-01-01}]\n    flaky:'
    )
    await linked_release(slack, policy)
    await launch(flaky_fails=True)
    verdict = await services.get_verdict(REPO, "v2.0")
    assert verdict.triage.quarantined == []
    assert [test.name for test in verdict.blocking.failing_tests] == [FLAKY]


@pytest.mark.parametrize("first_arriving", [1, 2])
async def test_a_retry_passing_after_a_failed_attempt_marks_the_test_flaky(slack: Slack, first_arriving: int) -> None:
    """Whichever attempt's report arrives first (an upload may bring attempt 1 late)."""
    await services.apply_policy_file(REPO, POLICY)
    failing = report({"test_0": "failed", "test_1": "passed"})
    passing = report({"test_0": "passed", "test_1": "passed"})
    launches = {
        1: (failing, LaunchSource(REPO, "smoke", "run-77", attempt=1, commit_sha="abc", branch="main")),
        2: (passing, LaunchSource(REPO, "smoke", "run-77", attempt=2, commit_sha="abc", branch="main")),
    }
    for attempt in (first_arriving, 3 - first_arriving):
        await services.record_launch(*launches[attempt])
    second = await Launch.get(source_id="run-77", attempt=2)
    assert (await Launch.get(source_id="run-77", attempt=1)).superseded
    assert second.flaky == 1
    flags = {
        row.test_case.name: row.flaky for row in await TestResult.filter(launch=second).prefetch_related("test_case")
    }
    assert flags == {"test_0": True, "test_1": False}
    state = await MilestoneTest.get(test_case__name="test_0")
    assert (state.latest_status.value, state.flaky, state.flaky_recent) == ("passed", True, "Y")
    verdict = await services.get_verdict(REPO, "v2.0")
    assert FLAKY in verdict.metrics.flaky


# Clusters ----------------------------------------------------------------------


def three_causes() -> bytes:
    cases = []
    for n in range(200):
        if n < 120:
            failure = f'<error type="ConnectionError" message="connect to db:5432 refused after {n * 7} ms"/>'
        elif n < 170:
            failure = (
                f"<failure type=\"AssertionError\" message=\"expected total '{n}.50' but was '{n}.49'\">"
                f"at com.acme.cart.Total.check(Total.java:{n})\n"
                f"at org.junit.Assert.fail(Assert.java:88)</failure>"
            )
        else:
            failure = f'<failure message="TimeoutError: request {uuid.uuid4()} timed out after {n} s"/>'
        cases.append(f'<testcase classname="com.acme.Checkout" name="test_{n}">{failure}</testcase>')
    cases += [f'<testcase classname="com.acme.Checkout" name="ok_{n}"/>' for n in range(50)]
    return f'<testsuite name="checkout">{"".join(cases)}</testsuite>'.encode()


async def test_a_launch_failing_200_tests_for_three_causes_shows_three_clusters(slack: Slack) -> None:
    await services.apply_policy_file(REPO, POLICY)
    await services.record_launch(
        parse_stream(io.BytesIO(three_causes()), "report.xml"),
        LaunchSource(REPO, "smoke", "run-9", commit_sha="c1a2b3c4d5", branch="main", url="https://ci/run/9"),
    )
    verdict = await services.get_verdict(REPO, "v2.0")
    assert [(cluster.count, cluster.signature) for cluster in verdict.triage.clusters] == [
        (120, "ConnectionError: connect to db:<n> refused after <n> ms"),
        (50, "AssertionError: expected total <value> but was <value>"),
        (30, "TimeoutError: request <uuid> timed out after <n> s"),
    ]
    biggest = verdict.triage.clusters[0]
    assert biggest.first is not None and biggest.first.url == "https://ci/run/9"

    text = gate_check(verdict).text
    assert "### Failures by cause" in text
    assert "- **120 tests:** `ConnectionError: connect to db:<n> refused after <n> ms` · first seen" in text
    assert text.index("**120 tests:**") < text.index("**50 tests:**") < text.index("**30 tests:**")

    answer = section_texts(await slack.answer("tests v2.0"))
    assert "*By cause*, biggest first" in answer
    assert "• *120 tests:* `ConnectionError: connect to db:&lt;n&gt; refused after &lt;n&gt; ms`" in answer
    assert answer.index("*120 tests:*") < answer.index("*50 tests:*") < answer.index("*30 tests:*")
