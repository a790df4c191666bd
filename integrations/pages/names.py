"""People's names for the pages: Slack's display names (users.info), kept for an hour; a GitHub
approver by their login; whoever Slack cannot name, by their id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core.approvers import USER_ID, is_github

NAME_SECONDS = 3600.0
# A page waits this long for Slack at most; names that are late show as ids this time.
SLACK_WAIT = 2.0


class DisplayNames:
    def __init__(self, client: AsyncWebClient | None):
        self.client = client
        self._names: dict[str, tuple[float, str | None]] = {}

    async def of(self, user_ids: Iterable[str]) -> dict[str, str]:
        ids = list(dict.fromkeys(user_ids))
        now = time.monotonic()
        missing = [
            user_id
            for user_id in ids
            if USER_ID.match(user_id) and (user_id not in self._names or now - self._names[user_id][0] > NAME_SECONDS)
        ]
        if missing and self.client is not None:
            try:
                await asyncio.wait_for(asyncio.gather(*(self._ask(user_id) for user_id in missing)), SLACK_WAIT)
            except TimeoutError:
                pass
        return {user_id: self._name(user_id) for user_id in ids}

    def _name(self, user_id: str) -> str:
        if is_github(user_id):
            return user_id.removeprefix("github:")
        cached = self._names.get(user_id)
        return (cached[1] if cached else None) or user_id

    async def _ask(self, user_id: str) -> None:
        assert self.client is not None
        try:
            user = (await self.client.users_info(user=user_id))["user"]
        except (SlackApiError, ClientError, KeyError, TypeError):
            # Not known to Slack (or Slack refused): the id serves, and is not asked again for a while.
            self._names[user_id] = (time.monotonic(), None)
            return
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("real_name") or user.get("name")
        self._names[user_id] = (time.monotonic(), name or None)
