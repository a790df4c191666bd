"""Calls to Slack, Web API and response_url posts alike, retried on rate limits (honouring
Retry-After) and on dropped connections; Slack's own failures (HTTP 500/503, `ok: false`
with internal_error, fatal_error or service_unavailable) retried with back-off for work done
in the background, and messages that must not be posted twice posted once."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.views.blocks import Message
from core.backoff import Backoff
from core.clock import utcnow

log = logging.getLogger("milestones.slack")

RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2
# Slack's answers when the failure is Slack's own and a later try may succeed
# (docs.slack.dev/reference/methods: "internal_error", "fatal_error", "service_unavailable").
SLACK_TROUBLE = {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
SERVER_ERRORS = {500, 502, 503, 504}
# Background work rides out a short Slack incident in place: 2 s, 6 s, 18 s between four tries.
SLACK_BACKOFF = Backoff(first_delay=timedelta(seconds=2), factor=3, max_attempts=4)
T = TypeVar("T")


def slack_trouble(error: BaseException) -> bool:
    """Whether Slack failed on its side (a later try may succeed), rather than refused the call."""
    if not isinstance(error, SlackApiError):
        return False
    return error.response.status_code in SERVER_ERRORS or error.response.get("error") in SLACK_TROUBLE


def trouble_reason(error: SlackApiError) -> str:
    return str(error.response.get("error") or f"HTTP {error.response.status_code}")


async def retrying(call: Callable[[], Awaitable[T]], backoff: Backoff = SLACK_BACKOFF) -> T:
    """`call`, tried again with back-off while Slack fails on its side; for background work."""
    for attempt in range(1, backoff.max_attempts + 1):
        try:
            return await call()
        except SlackApiError as error:
            if not slack_trouble(error) or backoff.exhausted(attempt):
                raise
            log.warning("Slack failed (%s); trying again (attempt %d)", trouble_reason(error), attempt + 1)
        await asyncio.sleep(backoff.delay(attempt).total_seconds())
    raise AssertionError("unreachable: the last attempt returns or raises")


def retry_handlers() -> list[AsyncRetryHandler]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=CONNECTION_RETRIES),
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
    ]


class ResponseFailed(RuntimeError):
    """Slack refused a response_url post (used more than 5 times, older than 30 minutes)."""


async def respond(response_url: str, payload: dict[str, Any]) -> None:
    client = AsyncWebhookClient(response_url, retry_handlers=retry_handlers())
    response = await client.send_dict(payload)
    if response.status_code != 200:
        raise ResponseFailed(f"response_url answered {response.status_code}: {response.body}")


async def post_in_channels(
    client: AsyncWebClient, channels: Sequence[str], message: Message, *, backoff: Backoff = SLACK_BACKOFF
) -> int:
    """The same news in each channel; one that refuses is logged and not tried again, so that
    the others are not told twice. Returns how many took it."""
    told = 0
    for channel in channels:
        try:
            await retrying(functools.partial(client.chat_postMessage, channel=channel, **message.posted()), backoff)
            told += 1
        except SlackApiError as error:
            log.warning("%s: not posted: %s (%s)", channel, error.response.get("error"), message.text[:80])
    return told


# Pages of conversations.history read when looking for a marked message (200 messages each).
HISTORY_PAGES = 5


async def find_marked(client: AsyncWebClient, channel: str, marker: dict[str, Any], *, since: datetime) -> str | None:
    """The ts of a message in `channel` since `since` whose metadata is `marker`, else None.

    For posting once where Slack may have stored a message whose answer never came back. A
    channel whose history cannot be read (no channels:history, not a member) counts as
    holding none: a rare duplicate rather than a lost message."""
    cursor = None
    for _ in range(HISTORY_PAGES):
        try:
            page = await client.conversations_history(
                channel=channel, oldest=f"{since.timestamp():.6f}", include_all_metadata=True, limit=200, cursor=cursor
            )
        except SlackApiError as error:
            log.warning("could not read the history of %s: %s", channel, error.response.get("error"))
            return None
        messages: list[dict[str, Any]] = page.get("messages", [])
        for message in messages:
            metadata = message.get("metadata") or {}
            if (metadata.get("event_type"), metadata.get("event_payload")) == (
                marker["event_type"],
                marker["event_payload"],
            ):
                return str(message["ts"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not page.get("has_more") or not cursor:
            return None
    return None


# Tries at posting a message that must be posted once (a sign-off request).
POST_ONCE_ATTEMPTS = 3


async def post_once(
    client: AsyncWebClient,
    channel: str,
    message: Message,
    marker: dict[str, Any],
    *,
    rest: str = "",
    backoff: Backoff = SLACK_BACKOFF,
) -> str:
    """Post `message` with `marker` as its metadata, once: when the connection drops or Slack
    fails after it may have stored the message, the channel is searched for the marker before
    posting again. Returns the message's ts; raises what the last try raised."""
    since = utcnow() - timedelta(minutes=1)
    # Without the connection retry handler: it would post again without looking first.
    once = AsyncWebClient(
        token=client.token,
        base_url=client.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )
    for attempt in range(1, POST_ONCE_ATTEMPTS + 1):
        try:
            posted = await once.chat_postMessage(channel=channel, metadata=marker, **message.posted(rest=rest))
            return str(posted["ts"])
        except (TimeoutError, aiohttp.ClientError, SlackApiError) as error:
            if isinstance(error, SlackApiError) and not slack_trouble(error):
                raise
            found = await find_marked(client, channel, marker, since=since)
            if found:
                return found
            if attempt == POST_ONCE_ATTEMPTS:
                raise
            log.warning("posting in %s failed (%r); trying again", channel, error)
        await asyncio.sleep(backoff.delay(attempt).total_seconds())
    raise AssertionError("unreachable: the last attempt returns or raises")
