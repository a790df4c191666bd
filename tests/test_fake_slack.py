"""The Slack fake and the Slack requests of tests/slack.py, driven by the real clients the
service uses: slack_sdk's AsyncWebClient and AsyncWebhookClient (aiohttp), Bolt's respond,
and checked against slack_sdk's own signature verifier and Bolt's payload parsing."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs

import aiohttp
import httpx
import pytest
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import is_action, is_event, is_slash_command, is_view_submission, to_action
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_async_handlers
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests import block_kit
from tests.fake_slack import FakeSlack
from tests.slack import (
    SIGNING_SECRET,
    block_actions_form,
    command_form,
    event_json,
    post,
    sign,
    url_verification_json,
    view_submission_form,
)

CHANNEL = "C0CHAN"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
async def web(fake: FakeSlack) -> AsyncIterator[AsyncWebClient]:
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[])
    yield client


def section(text: str, block_id: str | None = None) -> dict:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    if block_id:
        block["block_id"] = block_id
    return block


def button(action_id: str, text: str = "Go", value: str = "v") -> dict:
    return {"type": "button", "action_id": action_id, "text": {"type": "plain_text", "text": text}, "value": value}


# -- signing and payloads ------------------------------------------------------------------

# The worked example of https://api.slack.com/authentication/verifying-requests-from-slack
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_TIMESTAMP = 1531420618
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def test_sign_reproduces_slacks_documented_example():
    assert sign(DOC_BODY, DOC_TIMESTAMP) == {
        "X-Slack-Request-Timestamp": "1531420618",
        "X-Slack-Signature": DOC_SIGNATURE,
    }


def test_sign_is_what_slack_sdk_verifies():
    body = command_form("status v2.0")
    headers = sign(body)
    assert SignatureVerifier(SIGNING_SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier("another secret").is_valid_request(body, headers)
    assert not SignatureVerifier(SIGNING_SECRET).is_valid_request(body + b"x", headers)


def test_command_form_has_every_field_slack_sends_in_order():
    body = command_form("status v2.0", response_url="https://example.test/r", trigger_id="1.2.abc")
    fields = parse_qs(body.decode(), keep_blank_values=True)
    assert list(fields) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert b"command=%2Fmilestone&text=status+v2.0&" in body  # encoded as Slack encodes it
    request = AsyncBoltRequest(body=body.decode(), headers={"content-type": ["application/x-www-form-urlencoded"]})
    assert is_slash_command(request.body)
    assert (request.context.team_id, request.context.user_id, request.context.channel_id) == (
        "T0001",
        "U0USER",
        CHANNEL,
    )
    assert request.context.response_url == "https://example.test/r"


def test_block_actions_form_is_what_bolt_parses():
    message = {
        "type": "message",
        "ts": "1700000000.000100",
        "text": "Gate",
        "blocks": [
            {"type": "actions", "block_id": "gate-actions", "elements": [button("signoff", "Sign off", "v2.0")]},
        ],
    }
    body = block_actions_form("signoff", "v2.0", message=message, response_url="https://example.test/a")
    payload = json.loads(parse_qs(body.decode())["payload"][0])
    assert payload["type"] == "block_actions"
    assert payload["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": CHANNEL,
        "is_ephemeral": False,
    }
    action = payload["actions"][0]
    assert (action["block_id"], action["text"]["text"], action["type"]) == ("gate-actions", "Sign off", "button")
    request = AsyncBoltRequest(body=body.decode(), headers={"content-type": ["application/x-www-form-urlencoded"]})
    assert is_action(request.body) and to_action(request.body)["action_id"] == "signoff"
    assert (request.context.user_id, request.context.channel_id) == ("U0USER", CHANNEL)
    assert request.context.response_url == "https://example.test/a"

    home = {"id": "V0001", "type": "home", "blocks": message["blocks"]}
    from_home = json.loads(parse_qs(block_actions_form("signoff", "v2.0", view=home).decode())["payload"][0])
    assert from_home["container"] == {"type": "view", "view_id": "V0001"}
    assert "response_url" not in from_home and "channel" not in from_home


def test_view_submission_and_events_are_what_bolt_parses():
    body = view_submission_form("signoff-modal", {"note": {"text": "ship it"}}, private_metadata="m-7")
    request = AsyncBoltRequest(body=body.decode(), headers={"content-type": ["application/x-www-form-urlencoded"]})
    assert is_view_submission(request.body)
    view = request.body["view"]
    assert (view["callback_id"], view["private_metadata"]) == ("signoff-modal", "m-7")
    assert view["state"]["values"] == {"note": {"text": {"type": "plain_text_input", "value": "ship it"}}}
    assert request.context.user_id == "U0USER"

    event = json.loads(event_json({"type": "app_home_opened", "user": "U0USER", "tab": "home"}, event_id="Ev1"))
    assert (event["type"], event["event_id"], event["team_id"]) == ("event_callback", "Ev1", "T0001")
    assert is_event(event)
    assert json.loads(url_verification_json("abc")) == {
        "token": event["token"],
        "challenge": "abc",
        "type": "url_verification",
    }


async def test_post_signs_for_the_app():
    async def endpoint(request: Request) -> JSONResponse:
        body = await request.body()
        valid = SignatureVerifier(SIGNING_SECRET).is_valid_request(body, dict(request.headers))
        return JSONResponse({"valid": valid, "type": request.headers["content-type"]})

    app = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test") as client:
        signed = await post(client, url_verification_json("abc"))
        assert signed.json() == {"valid": True, "type": "application/json"}
        form = await post(client, command_form("x"))
        assert form.json() == {"valid": True, "type": "application/x-www-form-urlencoded"}
        stale = await post(client, command_form("x"), timestamp=int(time.time()) - 600)
        assert stale.json()["valid"] is False
        unsigned = await post(client, command_form("x"), secret=None)
        assert unsigned.json()["valid"] is False


# -- Web API -------------------------------------------------------------------------------


async def test_post_update_delete_round_trip(fake: FakeSlack, web: AsyncWebClient):
    blocks = [section("*v2.0* is blocked", "summary"), {"type": "actions", "elements": [button("signoff")]}]
    posted = await web.chat_postMessage(channel=CHANNEL, text="v2.0 is blocked", blocks=blocks)
    assert posted["ok"] and posted["channel"] == CHANNEL and abs(float(posted["ts"]) - time.time()) < 60
    assert posted["message"]["blocks"] == blocks
    second = await web.chat_postMessage(channel=CHANNEL, text="second")
    assert second["ts"] > posted["ts"]

    updated = await web.chat_update(channel=CHANNEL, ts=posted["ts"], text="v2.0 is ready")
    assert updated["ok"]
    first = fake.message(CHANNEL, posted["ts"])
    assert first is not None and first["text"] == "v2.0 is ready" and first["blocks"] == blocks  # blocks kept
    await web.chat_update(channel=CHANNEL, ts=posted["ts"], text="ready", blocks=[section("ready")])
    assert fake.messages(CHANNEL)[0]["blocks"] == [section("ready")]

    with pytest.raises(SlackApiError) as missing:
        await web.chat_update(channel=CHANNEL, ts="1.000000", text="x")
    assert missing.value.response["error"] == "message_not_found"

    await web.chat_delete(channel=CHANNEL, ts=second["ts"])
    assert [m["ts"] for m in fake.messages(CHANNEL)] == [posted["ts"]]
    assert [c.method for c in fake.calls()] == [
        "chat.postMessage",
        "chat.postMessage",
        "chat.update",
        "chat.update",
        "chat.update",
        "chat.delete",
    ]
    assert fake.calls("chat.postMessage")[0].body["channel"] == CHANNEL
    assert fake.calls("chat.postMessage")[0].headers["authorization"] == "Bearer xoxb-test"


async def test_form_encoded_arguments_and_json_fields(fake: FakeSlack, web: AsyncWebClient):
    blocks = [section("from a form")]
    answer = await web.api_call(
        "chat.postMessage", data={"channel": CHANNEL, "text": "t", "blocks": json.dumps(blocks)}
    )
    assert answer["ok"]
    assert fake.messages(CHANNEL)[0]["blocks"] == blocks
    assert fake.calls("chat.postMessage")[0].body["blocks"] == blocks
    with pytest.raises(SlackApiError) as broken:
        await web.api_call("chat.postMessage", data={"channel": CHANNEL, "text": "t", "blocks": "[{"})
    assert broken.value.response["error"] == "invalid_blocks_format"


async def test_ephemeral_and_channel_errors(fake: FakeSlack, web: AsyncWebClient):
    answer = await web.chat_postEphemeral(channel=CHANNEL, user="U0USER", text="only you")
    assert answer["message_ts"]
    assert [(e["user"], e["text"]) for e in fake.ephemerals] == [("U0USER", "only you")]
    with pytest.raises(SlackApiError) as no_user:
        await web.api_call("chat.postEphemeral", json={"channel": CHANNEL, "text": "x"})
    assert no_user.value.response["error"] == "invalid_arguments"

    fake.not_in_channel("C0PRIVATE")
    fake.missing_channel("C0GONE")
    for channel, error in [("C0PRIVATE", "not_in_channel"), ("C0GONE", "channel_not_found")]:
        with pytest.raises(SlackApiError) as refused:
            await web.chat_postMessage(channel=channel, text="x")
        assert refused.value.response["error"] == error
        with pytest.raises(SlackApiError) as refused:
            await web.chat_update(channel=channel, ts="1700000000.000100", text="x")
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as empty, pytest.warns(UserWarning, match="text"):
        await web.chat_postMessage(channel=CHANNEL, text="")
    assert empty.value.response["error"] == "no_text"
    assert fake.messages("C0PRIVATE") == []


async def test_views(fake: FakeSlack, web: AsyncWebClient):
    home = {"type": "home", "blocks": [section("Milestones")]}
    published = await web.views_publish(user_id="U0USER", view=home)
    view_id = published["view"]["id"]
    assert fake.home_views["U0USER"]["blocks"] == home["blocks"]
    again = await web.views_publish(user_id="U0USER", view={"type": "home", "blocks": [section("Again")]})
    assert again["view"]["id"] == view_id  # one Home tab per user
    with pytest.raises(SlackApiError) as conflict:
        await web.views_publish(user_id="U0USER", view=home, hash="stale")
    assert conflict.value.response["error"] == "hash_conflict"

    modal = {
        "type": "modal",
        "callback_id": "signoff",
        "title": {"type": "plain_text", "text": "Sign off"},
        "blocks": [section("Sure?")],
    }
    opened = await web.views_open(trigger_id="1.2.abc", view=modal)
    modal_id = opened["view"]["id"]
    assert fake.views[modal_id]["callback_id"] == "signoff"
    await web.views_update(view_id=modal_id, view={**modal, "blocks": [section("Done")]})
    assert fake.views[modal_id]["blocks"] == [section("Done")]
    with pytest.raises(SlackApiError) as unknown:
        await web.views_update(view_id="V404", view=modal)
    assert unknown.value.response["error"] == "not_found"
    with pytest.raises(SlackApiError) as too_long:
        await web.views_open(trigger_id="1.2.abc", view={**modal, "title": {"type": "plain_text", "text": "x" * 25}})
    assert too_long.value.response["error"] == "invalid_blocks"


async def test_auth_users_and_usergroups(fake: FakeSlack, web: AsyncWebClient):
    identity = await web.auth_test()
    assert (identity["team_id"], identity["user_id"], identity["bot_id"]) == ("T0001", "U0BOT", "B0BOT")
    fake.add_user("U0ADA", "ada", real_name="Ada Lovelace", is_admin=True)
    user = (await web.users_info(user="U0ADA"))["user"]
    assert (user["real_name"], user["is_admin"], user["team_id"]) == ("Ada Lovelace", True, "T0001")
    fake.add_usergroup("S0QA", "qa", ["U0ADA", "U0BOB"])
    assert (await web.usergroups_users_list(usergroup="S0QA"))["users"] == ["U0ADA", "U0BOB"]
    assert fake.calls("usergroups.users.list")[0].http_method == "GET"  # slack_sdk sends GET here
    for call, error in [
        (web.users_info(user="U0NOBODY"), "user_not_found"),
        (web.usergroups_users_list(usergroup="S0NONE"), "no_such_subteam"),
        (web.api_call("chat.scheduleMessage", json={}), "unknown_method"),
    ]:
        with pytest.raises(SlackApiError) as refused:
            await call
        assert refused.value.response["error"] == error


async def test_wrong_token_is_invalid_auth(fake: FakeSlack):
    client = AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError) as refused:
        await client.chat_postMessage(channel=CHANNEL, text="x")
    assert refused.value.response.status_code == 200
    assert refused.value.response.data == {"ok": False, "error": "invalid_auth"}
    assert fake.messages(CHANNEL) == []


async def test_51_blocks_are_invalid_blocks(fake: FakeSlack, web: AsyncWebClient):
    blocks = [section(f"line {n}") for n in range(51)]
    with pytest.raises(SlackApiError) as refused:
        await web.chat_postMessage(channel=CHANNEL, text="many", blocks=blocks)
    assert refused.value.response["error"] == "invalid_blocks"
    assert refused.value.response["errors"] == ["/blocks: 51 blocks; a message takes at most 50"]
    assert fake.messages(CHANNEL) == []
    await web.chat_postMessage(channel=CHANNEL, text="many", blocks=blocks[:50])
    # A Home tab takes 100.
    assert (await web.views_publish(user_id="U0USER", view={"type": "home", "blocks": blocks}))["ok"]


async def test_messages_over_12000_characters_of_block_text_are_refused_but_not_on_response_urls(
    fake: FakeSlack, web: AsyncWebClient
):
    blocks = [section("x" * 3000) for _ in range(4)] + [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "y"}]}
    ]
    for call in (
        lambda: web.chat_postMessage(channel=CHANNEL, text="long", blocks=blocks),
        lambda: web.chat_postMessage(channel=CHANNEL, text="z" * 40_001),
    ):
        with pytest.raises(SlackApiError) as refused:
            await call()
        assert refused.value.response["error"] in ("msg_blocks_too_long", "msg_too_long")
    assert fake.messages(CHANNEL) == []
    posted = await web.chat_postMessage(channel=CHANNEL, text="long", blocks=blocks[:4])  # 12,000 exactly
    with pytest.raises(SlackApiError) as refused:
        await web.chat_update(channel=CHANNEL, ts=posted["ts"], text="long", blocks=blocks)
    assert refused.value.response["error"] == "msg_blocks_too_long"
    url = fake.response_url(channel=CHANNEL)
    sent = await AsyncWebhookClient(url).send(text="long", blocks=blocks, response_type="in_channel")
    assert sent.status_code == 200


async def test_history_is_newest_first_with_metadata_only_when_asked(fake: FakeSlack, web: AsyncWebClient):
    marker = {"event_type": "milestone_digest", "event_payload": {"fire": "1:2026-12-01T09:00:00+00:00"}}
    first = await web.chat_postMessage(channel=CHANNEL, text="one", metadata=marker)
    second = await web.chat_postMessage(channel=CHANNEL, text="two")
    plain = await web.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in plain["messages"]] == ["two", "one"] and "metadata" not in plain["messages"][1]
    full = await web.conversations_history(channel=CHANNEL, include_all_metadata=True, limit=1, oldest=first["ts"])
    assert [m["text"] for m in full["messages"]] == ["two"] and full["has_more"] is False
    full = await web.conversations_history(
        channel=CHANNEL, include_all_metadata=True, inclusive=True, oldest=first["ts"]
    )
    assert full["messages"][1]["metadata"] == marker
    assert (await web.conversations_history(channel=CHANNEL, latest=second["ts"]))["messages"][0]["text"] == "one"
    fake.not_in_channel("C0ELSE")
    with pytest.raises(SlackApiError) as refused:
        await web.conversations_history(channel="C0ELSE")
    assert refused.value.response["error"] == "not_in_channel"


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, ""), (503, ""), (200, "internal_error"), (200, "fatal_error"), (200, "service_unavailable")],
)
async def test_slacks_own_failures_can_be_injected(fake: FakeSlack, web: AsyncWebClient, status: int, error: str):
    fake.fail("chat.postMessage", status=status, error=error, processed=status == 503)
    with pytest.raises(SlackApiError) as failed:
        await web.chat_postMessage(channel=CHANNEL, text="hi")
    assert failed.value.response.status_code == status
    assert failed.value.response["error"] == (error or "internal_error")
    # Processed: Slack stored it before failing.
    assert len(fake.messages(CHANNEL)) == (1 if status == 503 else 0)
    await web.chat_postMessage(channel=CHANNEL, text="again")
    assert fake.messages(CHANNEL)[-1]["text"] == "again"


async def test_a_held_call_waits_then_is_dropped_after_taking_effect(fake: FakeSlack, web: AsyncWebClient):
    hold = fake.hold("chat.postMessage", processed=True)
    posting = asyncio.ensure_future(web.chat_postMessage(channel=CHANNEL, text="held"))
    assert await asyncio.to_thread(hold.wait_arrival, 10)
    assert fake.messages(CHANNEL) == []
    await web.chat_postMessage(channel=CHANNEL, text="other calls go on")
    hold.release()
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await posting
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["other calls go on", "held"]


async def test_concurrent_calls_are_all_served(fake: FakeSlack, web: AsyncWebClient):
    answers = await asyncio.gather(*(web.chat_postMessage(channel=CHANNEL, text=str(n)) for n in range(20)))
    assert len({a["ts"] for a in answers}) == 20
    assert len(fake.messages(CHANNEL)) == 20


# -- rate limits and dropped connections -----------------------------------------------------


async def test_rate_limit_without_a_retry_handler(fake: FakeSlack, web: AsyncWebClient):
    fake.rate_limit("chat.postMessage", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await web.chat_postMessage(channel=CHANNEL, text="x")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert limited.value.response["error"] == "ratelimited"
    assert (await web.chat_postMessage(channel=CHANNEL, text="x"))["ok"]  # only the next call


async def test_rate_limit_retry_handler_waits_retry_after(fake: FakeSlack, monkeypatch: pytest.MonkeyPatch):
    # The handler sleeps int(Retry-After) + random.random(); take the jitter out.
    monkeypatch.setattr(builtin_async_handlers.random, "random", lambda: 0.0)
    client = AsyncWebClient(
        token=fake.bot_token, base_url=fake.api_url, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    )
    fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    answer = await client.chat_postMessage(channel=CHANNEL, text="after a wait")
    assert answer["ok"]
    first, second = fake.calls("chat.postMessage")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 1.0
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["after a wait"]


@pytest.mark.parametrize("reset, raised", [(False, aiohttp.ServerDisconnectedError), (True, aiohttp.ClientOSError)])
async def test_dropped_connection_raises(fake: FakeSlack, web: AsyncWebClient, reset: bool, raised: type):
    fake.drop_connection("views.publish", times=1, reset=reset)
    with pytest.raises(raised):
        await web.views_publish(user_id="U0USER", view={"type": "home", "blocks": []})
    assert fake.calls("views.publish")[0].status is None
    assert fake.home_views == {}


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_connection_error_retry_handler_recovers(fake: FakeSlack, reset: bool):
    handler = AsyncConnectionErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0)
    )
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[handler])
    fake.drop_connection("views.publish", times=2, reset=reset)
    answer = await client.views_publish(user_id="U0USER", view={"type": "home", "blocks": [section("Home")]})
    assert answer["ok"]
    assert [c.status for c in fake.calls("views.publish")] == [None, None, 200]
    assert fake.home_views["U0USER"]["blocks"] == [section("Home")]


async def test_a_lost_answer_makes_a_retried_post_post_twice(fake: FakeSlack):
    handler = AsyncConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0))
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=[handler])
    fake.drop_connection("chat.postMessage", times=1, processed=True)
    await client.chat_postMessage(channel=CHANNEL, text="once?")
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["once?", "once?"]


async def test_both_handlers_share_one_attempt_count(fake: FakeSlack, monkeypatch: pytest.MonkeyPatch):
    """slack_sdk keeps one RetryState per call: every handler's max_retry_count is compared
    with the retries made so far by all of them. After a dropped connection has been retried,
    a rate limit handler with max_retry_count=1 no longer retries a 429."""
    monkeypatch.setattr(builtin_async_handlers.random, "random", lambda: 0.0)

    def client(rate_limit_retries: int) -> AsyncWebClient:
        handlers = [
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            AsyncConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0)),
        ]
        return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, retry_handlers=handlers)

    posted = await client(1).chat_postMessage(channel=CHANNEL, text="a")
    fake.drop_connection("chat.update", times=1, reset=True)
    fake.rate_limit("chat.update", times=1, retry_after=0)  # failures apply in the order set
    with pytest.raises(SlackApiError) as limited:
        await client(1).chat_update(channel=CHANNEL, ts=posted["ts"], text="b")
    assert limited.value.response.status_code == 429

    fake.drop_connection("chat.update", times=1, reset=True)
    fake.rate_limit("chat.update", times=1, retry_after=0)
    assert (await client(2).chat_update(channel=CHANNEL, ts=posted["ts"], text="b"))["ok"]
    assert [c.status for c in fake.calls("chat.update")] == [None, 429, None, 429, 200]
    assert fake.messages(CHANNEL)[0]["text"] == "b"


# -- response URLs -------------------------------------------------------------------------


async def test_response_url_allows_five_uses(fake: FakeSlack):
    url = fake.response_url(channel=CHANNEL)
    webhook = AsyncWebhookClient(url)
    for n in range(5):
        sent = await webhook.send_dict({"text": f"update {n}", "replace_original": n > 0})
        assert sent.status_code == 200, sent.body
    sixth = await webhook.send_dict({"text": "one too many", "replace_original": True})
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert fake.response_url_uses(url) == 5
    assert [b["text"] for b in fake.responses(url)] == [f"update {n}" for n in range(5)]
    assert fake.response_messages(url) == [{"text": "update 4", "response_type": "ephemeral"}]
    assert [(c.method, c.status) for c in fake.calls("response_url")][-1] == ("response_url", 404)


async def test_response_url_expires_after_thirty_minutes(fake: FakeSlack):
    url = fake.response_url()
    fake.advance(30 * 60 + 1)
    late = await AsyncWebhookClient(url).send(text="late")
    assert (late.status_code, late.body) == (404, "expired_url")


async def test_bolt_respond_replace_delete_and_in_channel(fake: FakeSlack, web: AsyncWebClient):
    posted = await web.chat_postMessage(channel=CHANNEL, text="Sign off v2.0?", blocks=[section("Sign off?")])
    original = fake.message(CHANNEL, posted["ts"])
    assert original is not None
    url = fake.response_url(channel=CHANNEL, original=original)
    respond = AsyncRespond(response_url=url)

    await respond(text="Signed off by ada", blocks=[section("Signed off")], replace_original=True)
    seen = fake.response_messages(url)
    assert [(m["text"], m["response_type"]) for m in seen] == [("Signed off by ada", "in_channel")]
    assert fake.messages(CHANNEL)[0]["text"] == "Signed off by ada"  # the channel message changed
    assert fake.messages(CHANNEL)[0]["blocks"] == [section("Signed off")]

    await respond(text="Only you see this")
    await respond(text="Everyone sees this", response_type="in_channel")
    assert [(m["text"], m["response_type"]) for m in fake.response_messages(url)] == [
        ("Signed off by ada", "in_channel"),
        ("Only you see this", "ephemeral"),
        ("Everyone sees this", "in_channel"),
    ]
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["Signed off by ada", "Everyone sees this"]

    await respond(delete_original=True)
    assert [m["text"] for m in fake.response_messages(url)] == ["Only you see this", "Everyone sees this"]
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["Everyone sees this"]
    assert fake.responses(url)[0]["replace_original"] is True


async def test_response_url_checks_blocks(fake: FakeSlack):
    url = fake.response_url()
    refused = await AsyncWebhookClient(url).send(
        text="x", blocks=[{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]
    )
    assert (refused.status_code, refused.body) == (400, "invalid_blocks")
    empty = await AsyncWebhookClient(url).send_dict({})
    assert (empty.status_code, empty.body) == (400, "no_text")
    assert fake.response_messages(url) == []


async def test_response_url_connection_drop_is_retried_by_the_webhook_default(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
):
    # AsyncWebhookClient (and so Bolt's respond) retries connection errors once by default,
    # after 0.5 s plus up to 1 s of jitter; the jitter is taken out here.
    monkeypatch.setattr(builtin_async_handlers.random, "random", lambda: 0.0)
    url = fake.response_url()
    fake.drop_connection("response_url", times=1, reset=True)
    sent = await AsyncWebhookClient(url).send(text="made it")
    assert sent.status_code == 200
    assert [m["text"] for m in fake.response_messages(url)] == ["made it"]


# -- Block Kit limits ----------------------------------------------------------------------


def test_block_kit_good_payloads_have_no_problems():
    message = {
        "text": "v2.0 is blocked",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "v2.0"}},
            section("x" * 3000, "summary"),
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "y" * 2000}] * 10},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
            {"type": "actions", "block_id": "acts", "elements": [button(f"a{n}", "z" * 75) for n in range(25)]},
            {"type": "divider"},
        ],
    }
    assert block_kit.problems(message, "message") == []
    block_kit.assert_within_limits(message, "message")
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "x" * 24}, "blocks": [section("s")] * 100}
    assert block_kit.problems(modal, "modal") == []
    assert block_kit.problems({"type": "home", "blocks": [section("s")] * 100}, "home") == []


@pytest.mark.parametrize(
    "payload, surface, expected",
    [
        ({"blocks": [section("s")]}, "message", "/text: a message needs a non-empty top-level text"),
        (
            {"text": "t", "blocks": [section("x" * 3001)]},
            "message",
            "/blocks/0/text/text: 3001 characters, at most 3000",
        ),
        (
            {"text": "t", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}]},
            "message",
            "/blocks/0/fields: 11 fields, at most 10",
        ),
        (
            {"text": "t", "blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]},
            "message",
            "/blocks/0/fields/0/text: 2001 characters, at most 2000",
        ),
        (
            {"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]},
            "message",
            "/blocks/0/text/text: 151 characters, at most 150",
        ),
        (
            {"text": "t", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]},
            "message",
            "/blocks/0/text/type: must be plain_text, not mrkdwn",
        ),
        (
            {"text": "t", "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}]},
            "message",
            "/blocks/0/elements: 11 elements, at most 10",
        ),
        (
            {"text": "t", "blocks": [{"type": "actions", "elements": [button(f"a{n}") for n in range(26)]}]},
            "message",
            "/blocks/0/elements: 26 elements, at most 25",
        ),
        (
            {"text": "t", "blocks": [{"type": "actions", "elements": [button("a", "b" * 76)]}]},
            "message",
            "/blocks/0/elements/0/text/text: 76 characters, at most 75",
        ),
        (
            {"text": "t", "blocks": [{"type": "actions", "elements": [button("a", value="v" * 2001)]}]},
            "message",
            "/blocks/0/elements/0/value: 2001 characters, at most 2000",
        ),
        (
            {"text": "t", "blocks": [{"type": "actions", "elements": [button("a" * 256)]}]},
            "message",
            "/blocks/0/elements/0/action_id: 256 characters, at most 255",
        ),
        (
            {"text": "t", "blocks": [{"type": "actions", "elements": [{**button("a"), "url": "u" * 3001}]}]},
            "message",
            "/blocks/0/elements/0/url: 3001 characters, at most 3000",
        ),
        (
            {"text": "t", "blocks": [section("a", "b" * 256)]},
            "message",
            "/blocks/0/block_id: 256 characters, at most 255",
        ),
        (
            {"text": "t", "blocks": [section("a", "same"), section("b", "same")]},
            "message",
            "/blocks/1/block_id: 'same' repeats the block_id of /blocks/0",
        ),
        (
            {"text": "t", "blocks": [{"type": "section", "text": {"text": "no type"}}]},
            "message",
            "/blocks/0/text/type: None is not a text type (plain_text, mrkdwn)",
        ),
        (
            {"text": "t", "blocks": [{"type": "section", "text": {"type": "mrkdwn"}}]},
            "message",
            "/blocks/0/text/text: a text object needs non-empty text",
        ),
        (
            {"type": "modal", "title": {"type": "plain_text", "text": "x" * 25}, "blocks": []},
            "modal",
            "/title/text: 25 characters, at most 24",
        ),
        ({"type": "home", "blocks": [section("s")] * 101}, "home", "/blocks: 101 blocks; a home takes at most 100"),
    ],
)
def test_block_kit_problems(payload: dict, surface: str, expected: str):
    found = block_kit.problems(payload, surface)
    assert any(problem.startswith(expected) for problem in found), found
    with pytest.raises(AssertionError, match="Block Kit problem"):
        block_kit.assert_within_limits(payload, surface)


def test_user_groups_are_listed_and_permalinks_name_a_message() -> None:
    with FakeSlack() as fake:
        fake.add_usergroup("S0QA", "qa-leads", ["U1", "U2"])
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
        [group] = client.usergroups_list()["usergroups"]
        assert (group["id"], group["handle"], "users" in group) == ("S0QA", "qa-leads", False)
        assert client.usergroups_list(include_users=True)["usergroups"][0]["users"] == ["U1", "U2"]
        posted = client.chat_postMessage(channel="C1", text="hi")
        link = client.chat_getPermalink(channel="C1", message_ts=posted["ts"])["permalink"]
        assert link == f"https://acme.slack.com/archives/C1/p{posted['ts'].replace('.', '')}"
        with pytest.raises(SlackApiError) as missing:
            client.chat_getPermalink(channel="C1", message_ts="1.2")
        assert missing.value.response["error"] == "message_not_found"
