"""Digests through Slack: the subscribe, unsubscribe and subscriptions commands, and posting a
digest for one scheduled fire."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.command_line import TAG_PREFIX, Asker
from bot.slack_api import find_marked, post_once
from bot.views import replies
from bot.views.blocks import Message
from bot.views.chart import trend_png
from bot.views.digests import digest_message, subscribed, subscriptions_message, unsubscribed
from core import digests
from core.channels import channel_repository, repository_names
from core.clock import utcnow
from core.history import milestone_history
from core.lookup import resolve_milestone
from core.readings import MilestoneReading
from core.schedule import ScheduleError, parse_schedule
from core.zones import check_zone

log = logging.getLogger("milestones.slack")

# The metadata event of a digest message (Slack: event_type, alphanumerics and underscores).
DIGEST_EVENT = "milestone_digest"
# A fire's digest is looked for among the messages posted since a little before its time.
MARKER_SLACK = timedelta(minutes=1)
# Trend charts under a digest: of its worst milestones, over the last weeks.
CHARTS = 3
CHART_DAYS = 28


class Digests:
    def __init__(self, client: AsyncWebClient, command: str, default_zone: str):
        self.client = client
        self.command = command
        self.default_zone = default_zone

    async def subscribe(self, asker: Asker, words: Sequence[str]) -> Message:
        try:
            schedule, rest = parse_schedule(list(words), await self._zone_of(asker.user_id))
        except ScheduleError as error:
            return replies.failure(str(error))
        tag, rest = _tag_of(rest)
        scope = await self._scope(asker, rest, tagged=tag is not None)
        if isinstance(scope, Message):
            return scope
        repository, milestone = scope
        view, created = await digests.subscribe(
            asker.team_id,
            asker.channel_id,
            schedule,
            by=asker.user_id,
            repository=repository,
            milestone=milestone,
            tag=tag,
        )
        return subscribed(view, created, now=utcnow())

    async def unsubscribe(self, asker: Asker, words: Sequence[str]) -> Message:
        current = await digests.channel_subscriptions(asker.team_id, asker.channel_id)
        if not words:
            await digests.unsubscribe(asker.team_id, asker.channel_id)
            return unsubscribed(current)
        tag, rest = _tag_of(list(words))
        scope = await self._scope(asker, rest, tagged=tag is not None)
        if isinstance(scope, Message):
            return scope
        repository, milestone = scope
        await digests.unsubscribe(asker.team_id, asker.channel_id, repository=repository, milestone=milestone, tag=tag)
        remaining = {view.id for view in await digests.channel_subscriptions(asker.team_id, asker.channel_id)}
        return unsubscribed([view for view in current if view.id not in remaining])

    async def subscriptions(self, asker: Asker) -> Message:
        views = await digests.channel_subscriptions(asker.team_id, asker.channel_id)
        return subscriptions_message(views, command=self.command, now=utcnow())

    async def _scope(
        self, asker: Asker, words: list[str], *, tagged: bool = False
    ) -> tuple[str | None, str | None] | Message:
        """(repository, milestone) the words name: nothing (what the channel links), a repository, or a milestone.
        A tag's scope is a repository or the channel's."""
        linked = await channel_repository(asker.team_id, asker.channel_id)
        if tagged and words:
            known = {name.lower(): name for name in await repository_names()}
            text = " ".join(words)
            if text.lower() not in known:
                return replies.failure(
                    f"“{text}” is not a repository; a tag's digest is of a repository, as owner/repo"
                )
            return known[text.lower()], None
        if not words:
            if linked is None:
                return replies.failure(
                    f"This channel has no repository linked. Name a milestone or a repository, or `{self.command} link owner/repo` first"
                )
            return None, None
        text = " ".join(words)
        known = {name.lower(): name for name in await repository_names()}
        if text.lower() in known:
            return known[text.lower()], None
        resolution = await resolve_milestone(text, [linked] if linked else None)
        if resolution.found:
            return resolution.found.repository, resolution.found.name
        if resolution.ambiguous:
            return replies.name_the_repository(resolution, self.command, "subscribe")
        return replies.not_found(resolution, linked)

    async def _zone_of(self, user_id: str) -> str:
        """The subscriber's own time zone in Slack, else the TZ setting."""
        try:
            user = (await self.client.users_info(user=user_id))["user"]
            return check_zone(user.get("tz") or self.default_zone)
        except (SlackApiError, ScheduleError, KeyError):
            return self.default_zone

    async def post(
        self, subscription: digests.SubscriptionView, scheduled_for: datetime, *, look_first: bool = False
    ) -> Posted:
        """Post the digest of one fire; returns what it reported, for the next one to compare with.

        The message carries the fire in its metadata; with `look_first` the channel's recent
        messages are searched for it first, and a digest found there is not posted again.
        Raises NotFound when the scope is gone, SlackApiError when Slack refuses."""
        readings = await digests.digest_readings(subscription)
        before = await digests.last_reported(subscription.team_id, subscription.channel_id)
        reported = {str(reading.milestone_id): digests.baseline(reading) for reading in readings}
        items = [
            (reading, digests.changes(before.get(str(reading.milestone_id)), reported[str(reading.milestone_id)]))
            for reading in readings
        ]
        now = utcnow()
        marker = fire_marker(subscription.id, scheduled_for)
        if look_first and await find_marked(
            self.client, subscription.channel_id, marker, since=scheduled_for - MARKER_SLACK
        ):
            return Posted(reported, [], now, found=True)
        # A digest of many milestones takes a while to lay out: off the event loop too.
        message = await asyncio.to_thread(
            digest_message, items, scope=subscription.scope, now=now, command=self.command
        )
        # Not retried blindly on a dropped connection: Slack may have stored it.
        rest = f"`{self.command} list` shows every milestone"
        await post_once(self.client, subscription.channel_id, message, marker, rest=rest)
        quiet = all(change.nothing for _, change in items)
        return Posted(reported, [] if quiet else [reading for reading, _ in items[:CHARTS]], now)

    async def charts(self, channel: str, posted: Posted) -> None:
        """The trend of each milestone shown as an image under the digest; without one (no
        history, no files:write, Slack failing), the card's text sparkline stands."""
        for reading in posted.charted:
            try:
                history = await milestone_history(reading.milestone_id, posted.at.date(), days=CHART_DAYS)
                # Rendering takes a CPU for a while: off the event loop, so that Slack's
                # acknowledgements and webhook intake in the same process keep their latency.
                png = await asyncio.to_thread(trend_png, reading.name, history.days)
                if png is None:
                    continue
                await self.client.files_upload_v2(
                    channel=channel,
                    file=png,
                    filename=f"{reading.name}-trend.png",
                    title=f"{reading.name} ({reading.repository}): pass rate and blocking defects",
                    alt_txt=f"{reading.name}: pass rate and open blocking defects over {len(history.days)} days",
                )
            except Exception as error:
                detail = error.response.get("error") if isinstance(error, SlackApiError) else repr(error)
                log.warning("trend chart of %s not posted in %s: %s", reading.name, channel, detail)


def _tag_of(words: list[str]) -> tuple[str | None, list[str]]:
    """`tag:release` among the words: the tag, and the other words."""
    tags = [word for word in words if word.lower().startswith(TAG_PREFIX)]
    tag = tags[0][len(TAG_PREFIX) :] if tags else None
    return tag or None, [word for word in words if word not in tags]


@dataclass(frozen=True)
class Posted:
    """A digest posted: what it reported, and whose charts go under it."""

    reported: dict
    charted: list[MilestoneReading]
    at: datetime
    # In the channel already (posted before a crash or a lost answer): not posted again.
    found: bool = False


def fire_marker(subscription_id: int, scheduled_for: datetime) -> dict[str, Any]:
    """The message metadata that names one fire of a subscription, whichever clock posts it."""
    return {
        "event_type": DIGEST_EVENT,
        "event_payload": {"fire": f"{subscription_id}@{scheduled_for.astimezone(UTC).isoformat()}"},
    }
