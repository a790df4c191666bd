"""Live alerts through Slack: one message per milestone per settled burst of changes, in the
channels linked to its repository that take alerts."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.command_line import Asker
from bot.slack_api import post_in_channels
from bot.views import replies
from bot.views.blocks import Message, section
from bot.views.digests import alert_message
from core import outbox, services
from core.alerts import alert_state, what_is_new
from core.catalog import milestone_policy
from core.channels import channels_of, set_alerts


class Alerts:
    def __init__(self, client: AsyncWebClient, command: str):
        self.client = client
        self.command = command

    def handlers(self) -> dict[str, outbox.Handler]:
        return {outbox.MILESTONE_ALERTS: lambda item: self.alert(item.subject)}

    async def alert(self, milestone_id: int) -> str | None:
        """Say what is new since the last alert; the state is recorded even when nobody is told."""
        milestone = await services.milestone_by_id(milestone_id)
        if milestone is None:
            return None
        repository = milestone.repository.full_name
        reading = await services.read_milestone(repository, milestone.name)
        now = alert_state(reading)
        news = what_is_new(milestone.alerted, now)
        channels = await channels_of(repository, alerts=True) if news and milestone_policy(milestone).alerts else []
        if channels:
            message = alert_message(reading, news)
            await post_in_channels(self.client, channels, message)
        await services.record_alerted(milestone_id, now)
        return f"alerted {len(channels)} channels" if channels else None

    async def switch(self, asker: Asker, words: tuple[str, ...]) -> Message:
        if len(words) != 1 or words[0].lower() not in ("on", "off"):
            return replies.failure(f"Write `{self.command} alerts on` or `{self.command} alerts off`")
        on = words[0].lower() == "on"
        repository = await set_alerts(asker.team_id, asker.channel_id, on)
        if repository is None:
            return replies.failure(f"Alerts follow the channel's repository: `{self.command} link owner/repo` first")
        text = f"Live alerts of {repository}'s milestones are {'on' if on else 'off'} in this channel."
        return Message(text, [section(f":{'bell' if on else 'no_bell'}: {text}")])
