"""Slack's requests in, answers out: each listener acknowledges at once and stays thin."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answers import Answers, Asker
from bot.command_line import Query, UsageError
from bot.slack_api import respond
from bot.views import replies
from bot.views.blocks import SHARE_ACTION, Message, context, mention

log = logging.getLogger("milestones.slack")

# Slack waits 3 seconds for the acknowledgement: an answer ready by then goes in it,
# a slower one follows through the response_url.
ACK_BUDGET_SECONDS = 2.0
WORKING = Message("Working on it…", response_type="ephemeral")
# Posting in a channel the app is not in fails; the response_url still reaches it.
CHANNEL_UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived"}


def register(app: AsyncApp, answers: Answers) -> None:
    app.use(same_workspace)

    @app.command(answers.command)
    async def on_command(ack: AsyncAck, command: dict[str, Any]) -> None:
        asker = Asker(command["team_id"], command["channel_id"], command["user_id"])
        await answer_in_time(ack, command["response_url"], lambda: answers.command_text(command.get("text", ""), asker))

    @app.action("refresh")
    @app.action(re.compile(r"^choose_repository_\d+$"))
    async def on_rerun(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        message = await _guarded(lambda: answers.run(Query.decode(action["value"])))
        shared = body.get("container", {}).get("is_ephemeral") is False
        payload = (message.in_channel() if shared else message).payload()
        await respond(body["response_url"], {**payload, "replace_original": True})

    @app.action(SHARE_ACTION)
    async def on_share(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        user = body["user"]["id"]
        message = (await _guarded(lambda: answers.run(Query.decode(action["value"])))).in_channel()
        message = message.with_blocks(context(f"Shared by {mention(user)}"))
        try:
            await client.chat_postMessage(channel=body["channel"]["id"], text=message.text, blocks=message.blocks)
        except SlackApiError as error:
            if error.response.get("error") not in CHANNEL_UNREACHABLE:
                raise
            await respond(body["response_url"], {**message.payload(), "replace_original": False})
        await respond(body["response_url"], {"delete_original": True})

    @app.action("open_page")
    async def on_open_page(ack: AsyncAck) -> None:
        # A link button: Slack opens the page itself and still tells the app.
        await ack()

    @app.event("app_home_opened")
    async def on_home_opened(event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient) -> None:
        if event.get("tab") != "home":
            return
        # Slack may deliver this event twice; publishing the same view again is harmless.
        view = await answers.home(context.team_id or "", event["user"])
        await client.views_publish(user_id=event["user"], view=view)


async def answer_in_time(ack: AsyncAck, response_url: str, work: Callable[[], Awaitable[Message]]) -> None:
    task = asyncio.ensure_future(_guarded(work))
    done, _ = await asyncio.wait({task}, timeout=ACK_BUDGET_SECONDS)
    if task in done:
        await ack(**task.result().payload())
        return
    await ack(**WORKING.payload())
    message = await task
    await respond(response_url, {**message.payload(), "replace_original": True})


async def _guarded(work: Callable[[], Awaitable[Message]]) -> Message:
    """Whatever goes wrong, the person gets an answer rather than Slack's timeout."""
    try:
        return await work()
    except UsageError as error:
        return replies.failure(str(error).capitalize() + ".")
    except Exception:
        log.exception("answering a Slack request failed")
        return replies.failure("Something went wrong on our side; the error is in the service's log. Please try again.")


async def same_workspace(context: AsyncBoltContext, next: Callable[[], Awaitable[Any]]) -> BoltResponse | None:
    """Requests from another workspace (a shared channel, a token reused elsewhere) get nothing."""
    expected = context.authorize_result.team_id if context.authorize_result else None
    if expected and context.team_id and context.team_id != expected:
        log.warning("refused a request from workspace %s; this app belongs to %s", context.team_id, expected)
        return BoltResponse(status=403, body="This app serves another Slack workspace.")
    return await next()
