"""Live alerts: what is new since the last alert, one message per milestone per burst, never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import services
from core.alerts import Alert, what_is_new
from core.clock import utcnow
from core.ingest import LaunchSource
from tests.slack import CHANNEL_ID
from tests.test_digests import POLICY
from tests.test_slack_app import REPO, Slack, report, section_texts, slack_app
from tests.test_slack_signoff import notices

runs = iter(range(1, 1_000_000))


@pytest.fixture
async def slack(db: str):
    async with slack_app(db) as running:
        yield running


STATE = {
    "status": "ready_for_signoff",
    "green": True,
    "failing": [],
    "defects": {},
    "due_soon": False,
    "overdue": False,
    "quarantined": {},
    "ready_to_verify": [],
}


def test_what_is_new_compares_with_the_last_alert() -> None:
    assert not what_is_new(None, {**STATE, "green": False, "failing": ["a"]}), (
        "the first look tells nothing of the past"
    )
    red = {**STATE, "status": "blocked", "green": False, "failing": ["a", "b"], "defects": {"7": "critical"}}
    assert what_is_new(STATE, red) == Alert(turned_red=True, regressions=["a", "b"], defects={"7": "critical"})
    assert not what_is_new(red, red), "never the same alert twice"
    assert what_is_new(red, {**red, "failing": ["b", "c"]}) == Alert(regressions=["c"])
    assert what_is_new(red, STATE) == Alert(turned_green=True)
    assert what_is_new(red, {**red, "due_soon": True}) == Alert(due_soon=True)
    assert what_is_new({**red, "due_soon": True}, {**red, "due_soon": True, "overdue": True}) == Alert(overdue=True)
    held = {**STATE, "quarantined": {"a": "flaky"}, "ready_to_verify": [7]}
    assert what_is_new(STATE, held) == Alert(quarantined={"a": "flaky"}, ready_to_verify=[7])
    assert not what_is_new(held, held)
    assert what_is_new(held, STATE) == Alert(released=["a"])
    # Recorded before quarantine was known: nothing of it is new.
    old = {key: value for key, value in STATE.items() if key not in ("quarantined", "ready_to_verify")}
    assert not what_is_new(old, held)


async def launch(failing: int, tests: int = 200) -> None:
    cases = {f"test_{n}": "failed" if n < failing else "passed" for n in range(tests)}
    await services.record_launch(
        report(cases), LaunchSource(REPO, "smoke", f"run-{next(runs)}", commit_sha="abc1234", branch="main")
    )


async def linked_release(slack: Slack, policy: str = POLICY) -> None:
    await services.apply_policy_file(REPO, policy)
    await services.save_milestone(REPO, "v2.0", target_date=utcnow().date() + timedelta(days=30))
    await launch(failing=0)
    await slack.answer("link acme/shop")
    await notices(slack)  # the first look: nothing said


def alerts_in(slack: Slack) -> list[dict]:
    """The live alerts the channel got (completion and reopening are announced apart)."""
    return [message for message in slack.fake.messages(CHANNEL_ID) if message["text"].startswith("v2.0 (acme/shop): ")]


async def test_a_launch_flipping_200_tests_is_one_alert_and_never_repeated(slack: Slack) -> None:
    await linked_release(slack)
    await launch(failing=200)
    await services.upsert_defect(
        REPO, services.IssueFacts(9, "Data loss", ["bug", "P0"], "open", milestone_title="v2.0")
    )
    await notices(slack)
    [alert] = alerts_in(slack)
    assert alert["text"] == "v2.0 (acme/shop): turned red; 200 tests started failing; 1 new critical or high defect"
    text = section_texts(alert)
    assert "200 required tests started failing in *v2.0*" in text and "…and 170 more" in text
    assert ":beetle: new critical defect in *v2.0* (acme/shop): #9 Data loss" in text
    # The same failures again: nothing new, nothing said.
    await launch(failing=200)
    await notices(slack)
    assert len(alerts_in(slack)) == 1


async def test_alerts_can_be_turned_off_in_the_channel_or_the_policy(slack: Slack) -> None:
    await linked_release(slack)
    before = len(slack.fake.messages(CHANNEL_ID))
    answer = await slack.answer("alerts off")
    assert answer["text"] == "Live alerts of acme/shop's milestones are off in this channel."
    await launch(failing=3)
    await launch(failing=0)  # complete (no approvers), then red again
    await launch(failing=3)
    await notices(slack)
    assert alerts_in(slack) == []
    assert slack.fake.messages(CHANNEL_ID)[before:] == [], "completion and reopening included"
    await slack.answer("alerts on")
    await services.apply_policy_file(REPO, POLICY + "    alerts: false\n")
    await launch(failing=5)
    await notices(slack)
    assert alerts_in(slack) == []
    assert (await slack.answer("alerts maybe"))["text"] == "Write `/milestone alerts on` or `/milestone alerts off`"


async def test_due_in_three_days_and_overdue_are_said_once_each(slack: Slack) -> None:
    await linked_release(slack)
    await launch(failing=1)
    await notices(slack)
    await services.save_milestone(REPO, "v2.0", target_date=utcnow().date() + timedelta(days=2))
    await services.mark_calendar_alerts()
    await notices(slack)
    await services.mark_calendar_alerts()
    await notices(slack)
    due = [message["text"] for message in alerts_in(slack) if "due soon" in message["text"]]
    assert due == ["v2.0 (acme/shop): due soon"]
