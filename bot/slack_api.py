"""Calls to Slack, Web API and response_url posts alike, retried on rate limits (honouring
Retry-After) and on dropped connections."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.views.blocks import Message

log = logging.getLogger("milestones.slack")

RATE_LIMIT_RETRIES = 3
CONNECTION_RETRIES = 2


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


async def post_in_channels(client: AsyncWebClient, channels: Sequence[str], message: Message) -> int:
    """The same news in each channel; one that refuses is logged and not tried again, so that
    the others are not told twice. Returns how many took it."""
    told = 0
    for channel in channels:
        try:
            await client.chat_postMessage(channel=channel, **message.posted())
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
