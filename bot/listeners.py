"""Slack's requests in, answers out: each listener acknowledges at once and stays thin."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import Answers
from bot.command_line import Asker, Query, UsageError
from bot.signoffs import Click, Signoffs
from bot.slack_api import respond
from bot.views import replies
from bot.views.blocks import SHARE_ACTION, Message, context, mention
from bot.views.signoff import (
    APPROVE_ACTION,
    REASON_BLOCK,
    REASON_INPUT,
    REJECT_ACTION,
    REJECT_CALLBACK,
    WITHDRAW_ACTION,
    reason_error,
)
from core.catalog import NotFound
from core.db import note_failure
from core.enums import Decision

log = logging.getLogger("milestones.slack")

# Slack waits 3 seconds for the acknowledgement: an answer ready by then goes in it,
# a slower one follows through the response_url.
ACK_BUDGET_SECONDS = 2.0
WORKING = Message("Working on it…", response_type="ephemeral")
# Set by the HTTP endpoint when a request arrives: the budget counts from there.
RECEIVED_AT = "received_at"
SHARE_WINDOW_SECONDS = 60.0
# Posting in a channel the app is not in fails; the response_url still reaches it.
CHANNEL_UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived"}


def register(app: AsyncApp, answers: Answers, signoffs: Signoffs) -> None:
    app.use(same_workspace)

    @app.command(answers.command)
    async def on_command(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        asker = Asker(command["team_id"], command["channel_id"], command["user_id"])
        received_at = context.get(RECEIVED_AT, time.monotonic())
        await answer_in_time(
            ack, command["response_url"], lambda: answers.command_text(command.get("text", ""), asker), received_at
        )

    @app.action("refresh")
    @app.action(re.compile(r"^choose_repository_\d+$"))
    async def on_rerun(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        message = await _guarded(lambda: answers.run(Query.decode(action["value"])))
        shared = body.get("container", {}).get("is_ephemeral") is False
        payload = (message.in_channel() if shared else message).payload()
        await respond(body["response_url"], {**payload, "replace_original": True})

    shared_recently: dict[tuple[str, str, str], float] = {}

    @app.action(SHARE_ACTION)
    async def on_share(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        url, channel = body["response_url"], body["channel"]["id"]
        # A double click sends two requests before the button is gone: share once.
        now = time.monotonic()
        for key, at in list(shared_recently.items()):
            if now - at > SHARE_WINDOW_SECONDS:
                del shared_recently[key]
        key = (channel, body.get("container", {}).get("message_ts", ""), action["value"])
        if key in shared_recently:
            return
        shared_recently[key] = now
        try:
            message = (await answers.run(Query.decode(action["value"]))).in_channel()
        except Exception as error:
            await respond(url, {**failure_message(error).payload(), "replace_original": False})
            return
        message = message.with_blocks(context(f"Shared by {mention(body['user']['id'])}"))
        await respond(url, {"delete_original": True})
        try:
            await client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        except SlackApiError as error:
            if error.response.get("error") in CHANNEL_UNREACHABLE:
                await respond(url, {**message.payload(), "replace_original": False})
            else:
                log.error("sharing to %s failed: %s", channel, error.response.get("error"))
                failed = replies.failure(
                    f"Slack refused the message ({error.response.get('error')}); please try again."
                )
                await respond(url, {**failed.payload(), "replace_original": False})

    @app.action("open_page")
    async def on_open_page(ack: AsyncAck) -> None:
        # A link button: Slack opens the page itself and still tells the app.
        await ack()

    @app.action(APPROVE_ACTION)
    @app.action(WITHDRAW_ACTION)
    async def on_decision(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        decision = Decision.APPROVE if action["action_id"] == APPROVE_ACTION else Decision.WITHDRAW
        reply = await _guarded(lambda: signoffs.decide(Click.on_message(body, action.get("value", "")), decision))
        await _tell_privately(body, reply)

    @app.action(REJECT_ACTION)
    async def on_reject(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = Click.on_message(body, action.get("value", ""))
        reply = await _guarded(lambda: signoffs.ask_reason(click, body["trigger_id"]))
        await _tell_privately(body, reply)

    @app.view(REJECT_CALLBACK)
    async def on_reject_reason(ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        entered = view["state"]["values"].get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or ""
        if not entered.strip():
            await ack(**reason_error(Message("Please say why: the reason is shown with the rejection.")))
            return
        # Answered at once: a modal's submission waits for no Slack call.
        reply = await _guarded(lambda: signoffs.decide(Click.in_modal(body), Decision.REJECT, entered, ask_slack=False))
        if reply is None:
            await ack()
        else:
            # The modal stays open with the refusal under the reason.
            await ack(**reason_error(reply))

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        # Slack may deliver this event twice; publishing the same view again is harmless.
        view = await answers.home(context.team_id or "", event["user"])
        await client.views_publish(user_id=event["user"], view=view)


async def answer_in_time(
    ack: AsyncAck, response_url: str, work: Callable[[], Awaitable[Message]], received_at: float
) -> None:
    task = asyncio.ensure_future(_guarded(work))
    budget = ACK_BUDGET_SECONDS - (time.monotonic() - received_at)
    done, _ = await asyncio.wait({task}, timeout=max(budget, 0.001))
    if task in done:
        await ack(**task.result().payload())
        return
    await ack(**WORKING.payload())
    message = await task
    await respond(response_url, {**message.payload(), "replace_original": True})


async def _tell_privately(body: dict[str, Any], reply: Message | None) -> None:
    if reply is not None:
        await respond(
            body["response_url"], {**reply.payload(), "response_type": "ephemeral", "replace_original": False}
        )


async def _guarded(work: Callable[[], Awaitable[Any]]) -> Any:
    """Whatever goes wrong, the person gets an answer rather than Slack's timeout."""
    try:
        return await work()
    except Exception as error:
        return failure_message(error)


def failure_message(error: Exception) -> Message:
    """Private, like every error answer."""
    if isinstance(error, (UsageError, NotFound)):
        return replies.failure(str(error)[:1].upper() + str(error)[1:] + ".")
    if note_failure(error):  # logged once per outage
        return replies.failure("The service cannot reach its database right now. Please try again in a minute.")
    log.error("answering a Slack request failed", exc_info=error)
    return replies.failure("Something went wrong on our side; the error is in the service's log. Please try again.")


async def same_workspace(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> BoltResponse | None:
    """Requests from another workspace (a shared channel, a token reused elsewhere) get nothing."""
    expected = context.authorize_result.team_id if context.authorize_result else None
    if expected and context.team_id and context.team_id != expected:
        log.warning("ignored a request from workspace %s; this app belongs to %s", context.team_id, expected)
        # 200, or Slack would retry the event and count this app's endpoint as failing.
        return BoltResponse(status=200, body="")
    return await next()
