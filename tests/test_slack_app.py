"""/milestone, its buttons and the Home tab, sent to the real ASGI app as Slack sends them,
with the app's Slack calls received by a loopback fake Slack."""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aiohttp import WSMsgType, web

from bot import listeners
from core import services
from core.enums import MilestoneState
from core.ingest import LaunchSource
from core.junit import parse_stream
from core.models import ChannelLink, Milestone, Repository
from core.settings import Settings
from integrations.web import create_app
from tests.block_kit import assert_within_limits
from tests.cli import Result, run
from tests.fake_slack import FakeSlack
from tests.github import settings_for
from tests.slack import CHANNEL_ID, SIGNING_SECRET, TEAM_ID, USER_ID, block_actions_form, command_form, event_json, post

REPO = "acme/shop"
PUBLIC_URL = "https://gate.example.com"
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v2.0":
    plans: [smoke]
    required: ["plan:smoke"]
    max_open_defects: {critical: 0, high: 0}
    signoff: {approvers: [U0USER, U0PM]}
"""


class Slack:
    def __init__(self, fake: FakeSlack, client: httpx.AsyncClient, app: Any = None):
        self.fake = fake
        self.client = client
        self.app = app

    async def command(self, text: str, **fields: Any) -> tuple[httpx.Response, str]:
        """The slash command; returns Slack's HTTP response and the response_url it carried."""
        response_url = self.fake.response_url()
        response = await post(self.client, command_form(text, response_url=response_url, **fields))
        return response, response_url

    async def answer(self, text: str, **fields: Any) -> dict[str, Any]:
        """The answer given in the acknowledgement itself."""
        response, _ = await self.command(text, **fields)
        assert response.status_code == 200, response.text
        body = response.json()
        assert_within_limits(body, "message")
        return body

    async def click(self, message: dict[str, Any], action_id: str, *, ephemeral: bool = True, **fields: Any) -> str:
        """Press a button of `message`; returns the response_url the click carried."""
        value = next(
            element.get("value", "")
            for block in message["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
            if element["action_id"] == action_id
        )
        response_url = self.fake.response_url()
        container = {
            "type": "message",
            "message_ts": "1700000000.000100",
            "channel_id": CHANNEL_ID,
            "is_ephemeral": ephemeral,
        }
        body = block_actions_form(
            action_id, value, response_url=response_url, message=message, container=container, **fields
        )
        response = await post(self.client, body)
        assert response.status_code == 200, response.text
        return response_url


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    """Listeners go on after the acknowledgement: wait for what they send."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("nothing arrived in time")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def slack_app(database_url: str, **overrides: Any) -> AsyncIterator[Slack]:
    with FakeSlack() as fake:
        app = create_app(slack_settings(database_url, fake, **overrides), manage_database=False, workers=0)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://milestones.test") as client:
                yield Slack(fake, client, app)


def slack_settings(database_url: str, fake: FakeSlack, **overrides: Any) -> Settings:
    return settings_for(
        database_url,
        slack_bot_token=fake.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=fake.api_url,
        public_url=PUBLIC_URL,
        **overrides,
    )


@pytest.fixture
async def slack(db: str) -> AsyncIterator[Slack]:
    async with slack_app(db) as running:
        yield running


FAILURE = '<failure message="boom"/>'


def report(cases: dict[str, str]):
    body = "".join(
        f'<testcase classname="com.acme.Checkout" name="{name}">{"" if outcome == "passed" else FAILURE}</testcase>'
        for name, outcome in cases.items()
    )
    return parse_stream(io.BytesIO(f'<testsuite name="checkout">{body}</testsuite>'.encode()), "report.xml")


async def release(repository: str = REPO, *, failing: int = 2, passing: int = 8) -> None:
    """v2.0 with a policy, a launch with failing required tests and a blocking defect."""
    today = datetime.now(UTC).date()
    await services.apply_policy_file(repository, POLICY)
    await services.save_milestone(repository, "v2.0", target_date=today + timedelta(days=10), github_number=1)
    await services.save_milestone(repository, "v2.1", target_date=today + timedelta(days=40), github_number=2)
    cases = {f"test_ok_{n}": "passed" for n in range(passing)} | {f"test_bad_{n}": "failed" for n in range(failing)}
    await services.record_launch(
        report(cases),
        LaunchSource(
            repository,
            "smoke",
            "run-1",
            commit_sha="abcdef1234567",
            branch="main",
            url=f"https://github.com/{repository}/actions/runs/1",
        ),
    )
    await services.upsert_defect(
        repository,
        services.IssueFacts(
            7,
            "Checkout crashes",
            ["bug", "P0"],
            "open",
            url=f"https://github.com/{repository}/issues/7",
            milestone_title="v2.0",
            milestone_number=1,
        ),
    )


def section_texts(message: dict[str, Any]) -> str:
    return "\n".join(
        element["text"]
        for block in message["blocks"]
        for element in ([block["text"]] if "text" in block else [])
        + block.get("elements", [])
        + block.get("fields", [])
        if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text")
    )


# Requests as Slack signs them ---------------------------------------------------------


async def test_a_wrong_signature_and_an_old_timestamp_are_refused(slack: Slack) -> None:
    await release()
    body = command_form("list", response_url=slack.fake.response_url())
    wrong = await post(slack.client, body, secret="not the signing secret")
    stale = await post(slack.client, body, timestamp=int(time.time()) - 5 * 60 - 10)
    unsigned = await post(slack.client, body, secret=None)
    assert [wrong.status_code, stale.status_code, unsigned.status_code] == [401, 401, 401]
    assert slack.fake.calls() == []
    fresh = await post(slack.client, body, timestamp=int(time.time()) - 4 * 60)
    assert fresh.status_code == 200 and "v2.0" in fresh.text


async def test_without_slack_settings_the_endpoint_says_slack_is_off(db: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="milestones.web")
    app = create_app(settings_for(db), manage_database=False, workers=0)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            response = await post(client, command_form("list"))
            health = await client.get("/healthz")
    assert response.status_code == 503 and "Slack is not configured" in response.json()["error"]
    assert health.status_code == 200
    assert [record.message for record in caplog.records if record.message.startswith("Slack:")] == [
        "Slack: off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or SLACK_APP_TOKEN for Socket Mode)"
    ]


async def test_a_request_from_another_workspace_gets_nothing(slack: Slack) -> None:
    await release()
    response = await post(slack.client, command_form("status v2.0", team_id="T0OTHER"))
    # Answered (or Slack would retry) with nothing in it.
    assert response.status_code == 200 and response.text == ""
    event = event_json(
        {"type": "app_home_opened", "user": USER_ID, "channel": "D0HOME", "tab": "home"}, team_id="T0OTHER"
    )
    assert (await post(slack.client, event)).status_code == 200
    await asyncio.sleep(0.1)
    assert slack.fake.calls("views.publish") == []


# Subcommands --------------------------------------------------------------------------


async def test_help_and_empty_text_list_every_subcommand_with_an_example(slack: Slack) -> None:
    for text in ("help", ""):
        answer = await slack.answer(text)
        assert answer["response_type"] == "ephemeral"
        body = section_texts(answer)
        for subcommand in ("list", "status", "defects", "tests", "trend", "link", "unlink"):
            assert f"`/milestone {subcommand}" in body
        assert "`/milestone status v2.0`" in body and "`/milestone tests v2.0 flaky`" in body


async def test_a_wrong_subcommand_answers_the_usage(slack: Slack) -> None:
    answer = await slack.answer("stauts v2.0")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "there is no subcommand “stauts”. Try `/milestone help`."
    assert "`/milestone status <milestone>`" in section_texts(answer)


async def test_list_puts_the_most_urgent_first_with_its_numbers(slack: Slack) -> None:
    await release()
    answer = await slack.answer("list")
    lines = section_texts(answer).splitlines()
    assert lines[0] == "Milestones"
    assert re.match(r":red_circle: \*v2\.0\* Blocked · _Active_ · `[█░]{10} \d+%` · due ", lines[1]), lines[1]
    assert lines[1].endswith("(in 10 days) · pass rate 80% · 1 blocking defect")
    assert lines[2].startswith(":red_circle: *v2.1* Blocked · _Active_ · ") and lines[2].endswith(
        "(in 40 days) · pass rate 80%"
    )
    assert answer["text"] == "2 open milestones; most urgent: v2.0 (Blocked)"
    [share] = [element for block in answer["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert share["action_id"] == "share" and json.loads(share["value"]) == {"subcommand": "list"}


async def test_tags_starts_and_clones_from_slack(slack: Slack) -> None:
    await release()
    slack.fake.add_user("U0GUEST", "guest")
    slack.fake.add_user("U0ROOT", "root", is_admin=True)
    # Only a milestone's approvers (U0USER for v2.0) and workspace admins change it.
    for words in ("tag v2.0 release", f"start v2.0 {datetime.now(UTC).date().isoformat()}", "clone v2.0 v9"):
        refused = await slack.answer(words, user_id="U0GUEST")
        assert refused["text"] == (
            f":no_entry_sign: Only v2.0's approvers and workspace admins can {words.split()[0]} it."
        )
    assert await Milestone.filter(name="v9").count() == 0
    assert (await Milestone.get(name="v2.0")).tags == []
    tagged = await slack.answer("tag v2.0 release")
    assert tagged["text"] == "v2.0 is tagged release: `/milestone list tag:release` lists its tag"
    listed = await slack.answer("list tag:release")
    lines = section_texts(listed).splitlines()
    assert lines[0] == "Milestones tagged release"
    assert [line.split("*")[1] for line in lines[1:-1]] == ["v2.0"]
    assert lines[1].endswith("· `release`")
    [share] = [element for block in listed["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert json.loads(share["value"]) == {"subcommand": "list", "option": "tag:release"}
    assert (await slack.answer("list tag:nothing"))["text"] == "No open milestones tagged nothing."

    later = datetime.now(UTC).date() + timedelta(days=3)
    started = await slack.answer(f"start v2.1 {later.isoformat()}", user_id="U0ROOT")
    assert started["text"] == f"v2.1 starts on {later:%a} {later.day} {later:%b %Y}: planned"
    due = datetime.now(UTC).date() + timedelta(days=60)
    cloned = await slack.answer(f'clone v2.0 "v2.2 beta" {due.isoformat()}')
    assert cloned["text"] == (
        "milestone v2.2 beta cloned from v2.0; same plans, branches, required tests, thresholds, defect limits, "
        "approvers and tags; its GitHub milestone is being created"
    )
    card = section_texts(await slack.answer('status "v2.2 beta"'))
    assert "`release`" in card and "_Active_" in card
    refused = await slack.answer('clone v2.0 "v2.2 beta"')
    assert refused["text"] == "milestone v2.2 beta already exists in acme/shop; choose another name"
    assert "“bad!tag”: a tag is one word" in (await slack.answer("tag v2.0 bad!tag"))["text"]
    usage = await slack.answer("start v2.0 someday")
    assert "“someday” is not a date; write it as YYYY-MM-DD" in usage["text"]


async def test_status_card_in_the_acknowledgement(slack: Slack) -> None:
    await release()
    answer = await slack.answer("status V2")
    body = section_texts(answer)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("v2.0 (acme/shop): Blocked: 2 of 10 required tests failing")
    assert ":x: *Required tests pass* `████████░░` 2 of 10 required tests failing; pass rate 80% below 95%" in body
    assert ":x: *Defects resolved* open defects over the limit: 1 critical (max 0)" in body
    assert (
        "• :x: `com.acme.Checkout.test_bad_0` failed since <https://github.com/acme/shop/actions/runs/1|run> `abcdef1`"
        in body
    )
    assert "• :red_circle: <https://github.com/acme/shop/issues/7|#7 Checkout crashes> critical · *blocking*" in body
    assert "*Sign-off* 0 of 2 approvals · waiting for <@U0USER>, <@U0PM>" in body
    buttons = {
        element["action_id"]: element
        for block in answer["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }
    assert list(buttons) == ["refresh", "open_page", "share"]
    page = buttons["open_page"]["url"]
    assert page.startswith(f"{PUBLIC_URL}/milestones/acme/shop/v2.0?key=")
    # It opens on the section that blocks first.
    assert page.endswith("#failing")
    # Answered in the acknowledgement: no Web API call, no response_url post.
    assert slack.fake.calls() == [] or [call.method for call in slack.fake.calls()] == ["auth.test"]
    # The page the button opens is served by this very app; it names the approvers through Slack.
    assert (await slack.client.get(page.removeprefix(PUBLIC_URL).split("#")[0])).status_code == 200
    assert sorted(call.body["user"] for call in slack.fake.calls("users.info")) == ["U0PM", "U0USER"]


async def test_unknown_names_suggest_close_ones_and_missing_names_list_the_open_ones(slack: Slack) -> None:
    await release()
    unknown = await slack.answer("status v2.3")
    assert unknown["text"] == "No milestone v2.3; did you mean v2.0 or v2.1?"
    assert unknown["response_type"] == "ephemeral"
    missing = await slack.answer("defects")
    assert missing["text"] == "Which milestone? `/milestone defects <milestone> [critical|high|medium|low]`"
    assert "Open milestones: `v2.0`, `v2.1`" in section_texts(missing)
    nothing_close = await slack.answer("trend zebra")
    assert nothing_close["text"] == "No milestone zebra"


async def test_defects_tests_and_trend(slack: Slack) -> None:
    await release()
    await services.upsert_defect(
        REPO, services.IssueFacts(8, "Typo", ["bug", "P3"], "open", milestone_title="v2.0", milestone_number=1)
    )
    defects = section_texts(await slack.answer("defects v2.0"))
    assert defects.splitlines()[:3] == [
        "v2.0 · 2 defects not yet verified, 1 blocking",
        "• :red_circle: <https://github.com/acme/shop/issues/7|#7 Checkout crashes> critical · *blocking*",
        "• :white_circle: #8 Typo low",
    ]
    assert "#8" in section_texts(await slack.answer("defects v2.0 low"))
    assert "#8" not in section_texts(await slack.answer("defects v2.0 critical"))
    failing = section_texts(await slack.answer("tests 2.0"))
    assert failing.splitlines()[0] == "v2.0 · 2 failing tests, 2 of them required, 1 cause"
    assert "• :x: `com.acme.Checkout.test_bad_1` *required* failed since" in failing
    untested = await slack.answer("tests v2.0 untested")
    assert untested["text"] == "v2.0 · 0 tests not run yet (acme/shop)"
    trend = await slack.answer("trend v2.0")
    assert trend["text"].startswith("v2.0 (acme/shop) trend: pass rate from 80% to 80%, 0 regressions")
    assert "first reading → *No data*" in section_texts(trend)


async def test_a_lone_severity_is_read_as_one_with_one_open_milestone_else_asks_which(slack: Slack) -> None:
    await release()
    ask = await slack.answer("defects high")
    assert ask["text"] == "Which milestone? `/milestone defects <milestone> high`"
    assert "Open milestones: `v2.0`, `v2.1`" in section_texts(ask)
    await services.save_milestone(REPO, "v2.1", state=MilestoneState.CLOSED)
    one = await slack.answer("defects CRITICAL")
    assert one["text"] == "v2.0 · 1 critical defect not yet verified, 1 blocking (acme/shop)"
    flaky = await slack.answer("tests flaky")
    assert flaky["text"] == "v2.0 · 0 flaky tests (acme/shop)"


async def test_the_command_line_answers_as_slack_does(slack: Slack, db: str, tmp_path: Path) -> None:
    await release()
    await release("acme/api")

    def cli(*args: str) -> Result:
        return run(*args, database_url=db, cwd=tmp_path)

    ambiguous = await slack.answer("status 2.0")
    unknown = await slack.answer("trend v2.3")
    defects = await slack.answer("defects V2 acme/shop")
    tests = await slack.answer("tests v2.0 acme/api failing")
    assert cli("status", "2.0").stderr == f"error: {ambiguous['text']}; name one with --repo\n"
    assert cli("trend", "v2.3").stderr == f"error: {unknown['text']}\n"
    assert cli("defects", "V2", "--repo", "acme/shop").stdout.splitlines()[0] == defects["text"].removesuffix(
        " (acme/shop)"
    )
    assert cli("tests", "v2.0", "failing", "--repo", "ACME/API").stdout.splitlines()[0] == tests["text"].removesuffix(
        " (acme/api)"
    )
    ask = await slack.answer("defects high")
    assert cli("defects", "high").stderr.startswith(
        f"error: {ask['text'].replace('/milestone', 'milestones').replace('<milestone>', 'NAME')}; "
    )


async def test_link_sets_the_channel_default_and_an_ambiguous_name_asks_which(slack: Slack) -> None:
    await release()
    await release("acme/api")
    ask = await slack.answer("status v2.0")
    assert ask["text"] == "v2.0 is a milestone in several repositories: acme/api, acme/shop"
    choices = [element for block in ask["blocks"] if block["type"] == "actions" for element in block["elements"]]
    assert [element["text"]["text"] for element in choices] == ["acme/api", "acme/shop"]
    # Choosing one runs the command there, in place of the question.
    url = await slack.click(ask, "choose_repository_1")
    [answer] = await eventually(lambda: slack.fake.responses(url))
    assert answer["replace_original"] is True and answer["text"].startswith("v2.0 (acme/shop): Blocked")

    unknown = await slack.answer("link acme/nope")
    assert unknown["text"] == "No repository acme/nope is known here."
    linked = await slack.answer("link acme/shop")
    assert linked["text"] == "This channel now speaks about acme/shop."
    assert await ChannelLink.filter(team_id=TEAM_ID, channel_id=CHANNEL_ID).values_list(
        "repository__full_name", flat=True
    ) == [REPO]
    assert (await slack.answer("status v2.0"))["text"].startswith("v2.0 (acme/shop)")
    assert (await slack.answer("status v2.0 acme/api"))["text"].startswith("v2.0 (acme/api)")
    assert (await slack.answer("list"))["text"] == "2 open milestones in acme/shop; most urgent: v2.0 (Blocked)"
    # Another channel still asks.
    assert "several repositories" in (await slack.answer("status v2.0", channel_id="C0OTHER"))["text"]
    relinked = await slack.answer("link acme/api")
    assert relinked["text"] == "This channel now speaks about acme/api (was acme/shop)."
    assert (await slack.answer("unlink"))["text"] == "This channel no longer defaults to acme/api."
    assert (await slack.answer("unlink"))["text"] == "This channel has no default repository."


# Buttons --------------------------------------------------------------------------------


async def test_refresh_replaces_the_card_with_the_current_gate(slack: Slack) -> None:
    await release()
    card = await slack.answer("status v2.0")
    await services.upsert_defect(
        REPO,
        services.IssueFacts(
            7,
            "Checkout crashes",
            ["bug", "P0"],
            "closed",
            state_reason="completed",
            milestone_title="v2.0",
            milestone_number=1,
        ),
    )
    url = await slack.click(card, "refresh")
    [refreshed] = await eventually(lambda: slack.fake.responses(url))
    assert refreshed["replace_original"] is True
    assert refreshed["response_type"] == "ephemeral"
    assert ":white_check_mark: *Defects resolved* no open defects" in section_texts(refreshed)


async def test_share_posts_the_answer_in_the_channel_and_removes_the_private_copy(slack: Slack) -> None:
    await release()
    card = await slack.answer("status v2.0")
    url = await slack.click(card, "share")
    [posted] = await eventually(lambda: slack.fake.messages(CHANNEL_ID))
    assert posted["text"].startswith("v2.0 (acme/shop): Blocked")
    texts = section_texts(posted)
    assert f"Shared by <@{USER_ID}>" in texts
    assert [
        element["action_id"]
        for block in posted["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ] == ["refresh", "open_page"]
    [deleted] = await eventually(lambda: slack.fake.responses(url))
    assert deleted == {"delete_original": True}
    [post_call] = slack.fake.calls("chat.postMessage")
    assert (
        post_call.body["channel"] == CHANNEL_ID and json.loads(json.dumps(post_call.body["blocks"])) == posted["blocks"]
    )


async def test_share_in_a_channel_the_app_is_not_in_goes_through_the_response_url(slack: Slack) -> None:
    await release()
    slack.fake.not_in_channel(CHANNEL_ID)
    answer = await slack.answer("defects v2.0")
    url = await slack.click(answer, "share")
    deleted, shared = await eventually(lambda: len(slack.fake.responses(url)) == 2 and slack.fake.responses(url))
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert shared["text"].startswith("v2.0 · 1 defect not yet verified")
    assert deleted == {"delete_original": True}


async def test_a_double_click_on_share_posts_once(slack: Slack) -> None:
    await release()
    card = await slack.answer("status v2.0")
    await asyncio.gather(slack.click(card, "share"), slack.click(card, "share"))
    await eventually(lambda: slack.fake.messages(CHANNEL_ID))
    await asyncio.sleep(0.2)
    assert len(slack.fake.messages(CHANNEL_ID)) == 1


async def test_a_double_click_on_share_landing_on_two_web_processes_posts_once(db: str) -> None:
    # Each process has its own listeners: only the database can tell them the answer is shared.
    with FakeSlack() as fake:
        settings = slack_settings(db, fake)
        first, second = (create_app(settings, manage_database=False, workers=0) for _ in range(2))
        async with first.router.lifespan_context(first), second.router.lifespan_context(second):
            async with (
                httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url="http://one.test") as one,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://two.test") as two,
            ):
                await release()
                card = await Slack(fake, one, first).answer("status v2.0")
                await asyncio.gather(
                    Slack(fake, one, first).click(card, "share"), Slack(fake, two, second).click(card, "share")
                )
                await eventually(lambda: fake.messages(CHANNEL_ID))
                await asyncio.sleep(0.2)
                assert len(fake.messages(CHANNEL_ID)) == 1


async def test_sharing_what_no_longer_exists_answers_privately(slack: Slack) -> None:
    await release()
    card = await slack.answer("status v2.0")
    await Milestone.filter(name="v2.0").delete()
    url = await slack.click(card, "share")
    [answer] = await eventually(lambda: slack.fake.responses(url))
    assert answer["response_type"] == "ephemeral" and answer["replace_original"] is False
    assert answer["text"] == "No milestone v2.0 in acme/shop."
    assert slack.fake.messages(CHANNEL_ID) == []


async def test_a_tampered_button_value_is_answered_not_obeyed(slack: Slack) -> None:
    await release()
    card = await slack.answer("status v2.0")
    for block in card["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == "refresh":
                element["value"] = '{"subcommand":"link","repository":"acme/shop","milestone":"x"}'
    url = await slack.click(card, "refresh")
    [answer] = await eventually(lambda: slack.fake.responses(url))
    assert answer["text"] == "This button is out of date."
    assert await ChannelLink.all().count() == 0


# Speed --------------------------------------------------------------------------------


async def test_a_slow_answer_is_acknowledged_at_once_and_follows_on_the_response_url(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    await release()
    monkeypatch.setattr(listeners, "ACK_BUDGET_SECONDS", 0.05)
    original = services.read_milestone

    async def slow(*args: Any, **kwargs: Any):
        await asyncio.sleep(0.3)
        return await original(*args, **kwargs)

    monkeypatch.setattr(services, "read_milestone", slow)
    started = time.monotonic()
    response, url = await slack.command("status v2.0")
    acknowledged = time.monotonic() - started
    assert response.json()["text"] == "Working on it…" and acknowledged < 0.3
    [answer] = await eventually(lambda: slack.fake.responses(url))
    assert answer["replace_original"] is True and answer["text"].startswith("v2.0 (acme/shop): Blocked")


async def test_a_failure_inside_a_command_still_answers(slack: Slack, monkeypatch: pytest.MonkeyPatch) -> None:
    await release()

    async def broken(*args: Any, **kwargs: Any):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(services, "read_milestone", broken)
    answer = await slack.answer("status v2.0")
    assert answer["text"] == "Something went wrong on our side; the error is in the service's log. Please try again."
    assert answer["response_type"] == "ephemeral"


# App Home -------------------------------------------------------------------------------


async def test_home_tab_is_published_on_app_home_opened_and_again_on_a_retry(slack: Slack) -> None:
    await release()
    await release("acme/api")
    await ChannelLink.create(
        team_id=TEAM_ID, channel_id="C0REL", repository=await Repository.get(full_name=REPO), linked_by=USER_ID
    )
    event = {
        "type": "app_home_opened",
        "user": USER_ID,
        "channel": "D0HOME",
        "tab": "home",
        "event_ts": "1700000000.000200",
    }
    body = event_json(event, team_id=TEAM_ID)
    assert (await post(slack.client, body)).status_code == 200
    view = await eventually(lambda: slack.fake.home_views.get(USER_ID))
    assert_within_limits(view, "home")
    texts = section_texts(view)
    assert "*acme/shop*" in texts and "acme/api" not in texts
    assert ":red_circle: *v2.0* Blocked" in texts
    [publish] = slack.fake.calls("views.publish")
    assert publish.body["user_id"] == USER_ID and publish.body["view"]["type"] == "home"
    # Slack's retry of the same event publishes the same view again: nothing piles up.
    assert (
        await post(slack.client, body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    ).status_code == 200
    await eventually(lambda: len(slack.fake.calls("views.publish")) == 2)
    # The same view but for its "Updated …" footer.
    assert slack.fake.home_views[USER_ID]["blocks"][:-1] == view["blocks"][:-1]


async def test_home_lists_what_awaits_the_viewers_signoff(slack: Slack) -> None:
    await release(failing=0)
    await services.upsert_defect(
        REPO,
        services.IssueFacts(
            7,
            "Checkout crashes",
            ["bug", "P0"],
            "closed",
            state_reason="completed",
            milestone_title="v2.0",
            milestone_number=1,
        ),
    )
    await post(
        slack.client,
        event_json({"type": "app_home_opened", "user": USER_ID, "channel": "D0HOME", "tab": "home"}, team_id=TEAM_ID),
    )
    view = await eventually(lambda: slack.fake.home_views.get(USER_ID))
    texts = section_texts(view)
    assert "*Awaiting your sign-off*" in texts
    assert texts.index(":large_blue_circle: *v2.0* `acme/shop` Ready for sign-off") < texts.index("*acme/shop*")
    # Someone who is not an approver sees no such section.
    await post(
        slack.client,
        event_json({"type": "app_home_opened", "user": "U0DEV", "channel": "D0DEV", "tab": "home"}, team_id=TEAM_ID),
    )
    other = await eventually(lambda: slack.fake.home_views.get("U0DEV"))
    assert "Awaiting your sign-off" not in section_texts(other)


async def test_the_messages_tab_publishes_nothing(slack: Slack) -> None:
    await post(
        slack.client,
        event_json(
            {"type": "app_home_opened", "user": USER_ID, "channel": "D0HOME", "tab": "messages"}, team_id=TEAM_ID
        ),
    )
    await asyncio.sleep(0.1)
    assert slack.fake.calls("views.publish") == []


async def test_rate_limited_publishing_waits_and_succeeds(slack: Slack) -> None:
    await release()
    slack.fake.rate_limit("views.publish", times=1, retry_after=1)
    await post(
        slack.client,
        event_json({"type": "app_home_opened", "user": USER_ID, "channel": "D0HOME", "tab": "home"}, team_id=TEAM_ID),
    )
    await eventually(lambda: slack.fake.home_views.get(USER_ID))
    attempts = slack.fake.calls("views.publish")
    assert len(attempts) == 2


async def test_the_command_name_is_a_setting(db: str) -> None:
    await release()
    async with slack_app(db, slack_command="/gate") as slack:
        answer = await slack.answer("help", command="/gate")
        assert "`/gate status <milestone>`" in section_texts(answer)


# Socket Mode ----------------------------------------------------------------------------


class SocketModeSlack:
    """Slack's side of Socket Mode on loopback: apps.connections.open hands out a WebSocket
    URL, and the WebSocket carries envelopes to the app and its acknowledgements back."""

    APP_TOKEN = "xapp-1-A0APP-1-secret"

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/api/auth.test", self.auth_test)
        self.app.router.add_post("/api/apps.connections.open", self.connections_open)
        self.app.router.add_get("/link", self.link)
        self.connected = asyncio.Event()
        self.acks: asyncio.Queue[dict] = asyncio.Queue()
        self.socket: web.WebSocketResponse | None = None
        self.opened_with: list[str] = []

    async def __aenter__(self) -> SocketModeSlack:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()

    async def auth_test(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "team_id": TEAM_ID, "user_id": "U0BOT", "bot_id": "B0BOT"})

    async def connections_open(self, request: web.Request) -> web.Response:
        self.opened_with.append(request.headers["Authorization"])
        return web.json_response({"ok": True, "url": self.url.replace("http", "ws") + "/link"})

    async def link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0APP"}})
        self.connected.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self.acks.put(json.loads(message.data))
        return socket

    async def command(self, text: str) -> dict:
        assert self.socket is not None
        fields = {
            key: values[0] for key, values in parse_qs(command_form(text).decode(), keep_blank_values=True).items()
        }
        await self.socket.send_json(
            {"envelope_id": "e-1", "type": "slash_commands", "accepts_response_payload": True, "payload": fields}
        )
        return await asyncio.wait_for(self.acks.get(), 5)


async def test_socket_mode_answers_commands_without_a_public_url(db: str) -> None:
    await release()
    async with SocketModeSlack() as slack:
        settings = settings_for(
            db,
            slack_bot_token="xoxb-test",
            slack_app_token=SocketModeSlack.APP_TOKEN,
            slack_api_url=slack.url + "/api/",
        )
        app = create_app(settings, manage_database=False, workers=0)
        async with app.router.lifespan_context(app):
            await asyncio.wait_for(slack.connected.wait(), 5)
            assert slack.opened_with == [f"Bearer {SocketModeSlack.APP_TOKEN}"]
            ack = await slack.command("status v2.0")
            assert ack["envelope_id"] == "e-1"
            assert ack["payload"]["text"].startswith("v2.0 (acme/shop): Blocked")
            assert ack["payload"]["response_type"] == "ephemeral"
            # Without a signing secret nothing comes in over HTTP.
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                refused = await post(client, command_form("status v2.0"))
            assert refused.status_code == 503 and "Socket Mode" in refused.json()["error"]


async def test_socket_mode_keeps_trying_while_slack_is_unreachable(db: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO")
    with FakeSlack() as fake:
        settings = settings_for(
            db, slack_bot_token=fake.bot_token, slack_app_token="xapp-1-unknown", slack_api_url=fake.api_url
        )
        app = create_app(settings, manage_database=False, workers=0)
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                assert (await client.get("/healthz")).status_code == 200
            await eventually(lambda: fake.calls("apps.connections.open"))
            await eventually(
                lambda: any(
                    record.name == "milestones.slack" and record.message.startswith("Failed to connect")
                    for record in caplog.records
                )
            )
