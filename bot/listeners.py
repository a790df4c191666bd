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
from bot.slack_api import respond, slack_trouble, trouble_reason
from bot.views import replies
from bot.views.blocks import SHARE_ACTION, Message, context, mention
from bot.views.signoff import (
    APPROVE_ACTION,
    REASON_BLOCK,
    REASON_INPUT,
    REASON_MAX,
    REJECT_ACTION,
    REJECT_CALLBACK,
    WITHDRAW_ACTION,
    reason_error,
)
from core.catalog import NotFound
from core.db import note_failure
from core.enums import Decision
from core.shares import claim_share, release_share, share_key

log = logging.getLogger("milestones.slack")

# Slack waits 3 seconds for the acknowledgement: an answer ready by then goes in it,
# a slower one follows through the response_url.
ACK_BUDGET_SECONDS = 2.0
WORKING = Message("Working on it…", response_type="ephemeral")
# Set by the HTTP endpoint when a request arrives: the budget counts from there.
RECEIVED_AT = "received_at"
# Posting in a channel the app is not in fails; the response_url still reaches it.
CHANNEL_UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived"}


def register(app: AsyncApp, answers: Answers, signoffs: Signoffs) -> None:
    listeners = Listeners(answers, signoffs)
    app.use(same_workspace)
    app.command(answers.command)(listeners.on_command)
    app.action("refresh")(listeners.on_rerun)
    app.action(re.compile(r"^choose_repository_\d+$"))(listeners.on_rerun)
    app.action(SHARE_ACTION)(listeners.on_share)
    app.action("open_page")(listeners.on_open_page)
    app.action(APPROVE_ACTION)(listeners.on_decision)
    app.action(WITHDRAW_ACTION)(listeners.on_decision)
    app.action(REJECT_ACTION)(listeners.on_reject)
    app.view(REJECT_CALLBACK)(listeners.on_reject_reason)
    app.event("app_home_opened")(listeners.on_home_opened)


class Listeners:
    """One method per kind of request; Bolt hands each the arguments it names."""

    def __init__(self, answers: Answers, signoffs: Signoffs):
        self.answers = answers
        self.signoffs = signoffs

    async def on_command(self, ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        asker = Asker(command["team_id"], command["channel_id"], command["user_id"])
        received_at = context.get(RECEIVED_AT, time.monotonic())
        await answer_in_time(
            ack,
            command["response_url"],
            lambda: self.answers.command_text(command.get("text", ""), asker),
            received_at,
        )

    async def on_rerun(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Refresh, or the choice of a repository: the read runs again in place."""
        await ack()
        message = await _guarded(lambda: self.answers.run(Query.decode(action["value"])))
        shared = body.get("container", {}).get("is_ephemeral") is False
        payload = (message.in_channel() if shared else message).payload()
        await respond(body["response_url"], {**payload, "replace_original": True})

    async def on_share(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        url, channel = body["response_url"], body["channel"]["id"]
        # A double click sends two requests before the button is gone, maybe to two processes: share once.
        key = share_key(channel, body.get("container", {}).get("message_ts", ""), action["value"])
        if not await claim_share(key):
            return
        try:
            query = Query.decode(action["value"])
            message = (await self.answers.run(query)).in_channel()
        except Exception as error:
            await release_share(key)
            await respond(url, {**failure_message(error).payload(), "replace_original": False})
            return
        message = message.with_blocks(context(f"Shared by {mention(body['user']['id'])}"))
        await respond(url, {"delete_original": True})
        try:
            await client.chat_postMessage(channel=channel, **message.posted(rest=self.answers.rest_of(query)))
        except SlackApiError as error:
            if error.response.get("error") in CHANNEL_UNREACHABLE:
                await respond(url, {**message.payload(), "replace_original": False})
            else:
                log.error("sharing to %s failed: %s", channel, error.response.get("error"))
                await release_share(key)
                failed = replies.failure(
                    f"Slack refused the message ({error.response.get('error')}); please try again."
                )
                await respond(url, {**failed.payload(), "replace_original": False})

    async def on_open_page(self, ack: AsyncAck) -> None:
        # A link button: Slack opens the page itself and still tells the app.
        await ack()

    async def on_decision(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Approve, or Withdraw my decision."""
        await ack()
        decision = Decision.APPROVE if action["action_id"] == APPROVE_ACTION else Decision.WITHDRAW
        reply = await _guarded(lambda: self.signoffs.decide(Click.on_message(body, action.get("value", "")), decision))
        await _tell_privately(body, reply)

    async def on_reject(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = Click.on_message(body, action.get("value", ""))
        reply = await _guarded(lambda: self.signoffs.ask_reason(click, body["trigger_id"]))
        await _tell_privately(body, reply)

    async def on_reject_reason(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        entered = view["state"]["values"].get(REASON_BLOCK, {}).get(REASON_INPUT, {}).get("value") or ""
        if not entered.strip():
            await ack(**reason_error(Message("Please say why: the reason is shown with the rejection.")))
            return
        if len(entered) > REASON_MAX:
            limit = f"The reason takes at most {REASON_MAX:,} characters; this one has {len(entered):,}."
            await ack(**reason_error(Message(limit)))
            return
        # Answered at once: a modal's submission waits for no Slack call.
        reply = await _guarded(
            lambda: self.signoffs.decide(Click.in_modal(body), Decision.REJECT, entered, ask_slack=False)
        )
        if reply is None:
            await ack()
        else:
            # The modal stays open with the refusal under the reason.
            await ack(**reason_error(reply))

    async def on_home_opened(self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        # Slack may deliver this event twice; publishing the same view again is harmless.
        view = await self.answers.home(context.team_id or "", event["user"])
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
    if isinstance(error, SlackApiError) and slack_trouble(error):
        log.warning("Slack failed while answering a request: %s", trouble_reason(error))
        return replies.failure(
            f"Slack is having trouble right now ({trouble_reason(error)}); nothing was changed. Please try again in a minute."
        )
    log.error("answering a Slack request failed", exc_info=error)
    return replies.failure("Something went wrong on our side; the error is in the service's log. Please try again.")


async def same_workspace(
    context: AsyncBoltContext, body: dict[str, Any], next: Callable[[], Awaitable[Any]]
) -> BoltResponse | None:
    """Requests from another workspace (a shared channel, a token reused elsewhere) get nothing:
    both the workspace the request came through and, where the payload says, the one of the
    person who made it must be the installing workspace."""
    expected = context.authorize_result.team_id if context.authorize_result else None
    user = body.get("user")
    user_team = user.get("team_id") if isinstance(user, dict) else None
    foreign = [team for team in (context.team_id, user_team) if team and team != expected]
    if expected and foreign:
        log.warning("ignored a request from workspace %s; this app belongs to %s", foreign[0], expected)
        # 200, or Slack would retry the event and count this app's endpoint as failing.
        return BoltResponse(status=200, body="")
    return await next()
