"""What the bot answers: each command read, the engine asked, the answer rendered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.alerts import Alerts
from bot.command_line import TAG_PREFIX, WITH_VALUE, Asker, Query, UsageError, parse
from bot.digests import Digests
from bot.signoffs import Signoffs
from bot.views import replies
from bot.views.blocks import Message, link
from bot.views.home import home_view
from bot.views.milestones import (
    Links,
    milestone_defects,
    milestone_list,
    milestone_tests,
    milestone_trend,
    quarantine_list,
    status_card,
)
from bot.views.signoff import refused
from core import channels, services
from core.clock import utcnow
from core.history import milestone_history
from core.lookup import option_read_as_milestone_word, resolve_milestone
from core.report import clone_text, page_section

log = logging.getLogger("milestones.slack")

# (repository, milestone, section of the page or None) -> the page's signed URL, if pages are on.
PageUrl = Callable[[str, str, "str | None"], "str | None"]


@dataclass(frozen=True)
class Answers:
    command: str
    page_url: PageUrl
    signoffs: Signoffs
    digests: Digests
    alerts: Alerts

    def rest_of(self, query: Query) -> str:
        """Where a posted answer too long for one message reads in full: the milestone's page,
        else the command that lists it."""
        if query.repository and query.milestone:
            url = self.page_url(query.repository, query.milestone, None)
            if url:
                return link(url, "the milestone page")
        words = " ".join(word for word in (query.subcommand, query.milestone, query.option) if word)
        return f"`{self.command} {words}`"

    async def command_text(self, text: str, asker: Asker) -> Message:
        known = await channels.repository_names()
        try:
            invocation = parse(text, known)
        except UsageError as error:
            return replies.usage_message(self.command, error)
        name = invocation.subcommand.name
        if name == "help":
            return replies.help_message(self.command)
        if name == "unlink":
            return replies.unlinked(await channels.unlink_channel(asker.team_id, asker.channel_id))
        if name == "subscribe":
            return await self.digests.subscribe(asker, invocation.words)
        if name == "unsubscribe":
            return await self.digests.unsubscribe(asker, invocation.words)
        if name == "subscriptions":
            return await self.digests.subscriptions(asker)
        if name == "alerts":
            return await self.alerts.switch(asker, invocation.words)
        if invocation.repository and invocation.repository not in known:
            return replies.unknown_repository(invocation.repository, known)
        if name == "link":
            assert invocation.repository
            before = await channels.link_channel(asker.team_id, asker.channel_id, invocation.repository, asker.user_id)
            return replies.linked(invocation.repository, before, self.command)
        scope = invocation.repository or await channels.channel_repository(asker.team_id, asker.channel_id)
        repositories = [scope] if scope else None
        if name == "list":
            return await self.run(Query("list", scope, option=invocation.option))
        if not invocation.milestone:
            names = [summary.name for summary in await services.list_milestones(repositories)]
            return replies.which_milestone(self.command, invocation.subcommand, names)
        if invocation.option is None:
            as_option = await option_read_as_milestone_word(
                invocation.milestone, invocation.subcommand.options, repositories
            )
            if as_option is not None:
                sole, open_refs = as_option
                option = invocation.milestone.lower()
                if sole is not None:
                    return await self.run(Query(name, sole.repository, sole.name, option))
                return replies.which_milestone(
                    self.command, invocation.subcommand, [ref.name for ref in open_refs], option=option
                )
        resolution = await resolve_milestone(invocation.milestone, repositories)
        query = Query(name, None, invocation.milestone, invocation.option)
        if resolution.found:
            found = resolution.found
            if name == "signoff":
                return await self.signoffs.request(asker, found.repository, found.name)
            if name == "approvers" and invocation.edit:
                return await self.signoffs.edit_approvers(
                    asker, found.repository, found.name, invocation.edit, invocation.members
                )
            if name == "quarantine" and invocation.edit:
                return await self.signoffs.edit_quarantine(
                    asker,
                    found.repository,
                    found.name,
                    invocation.edit,
                    invocation.members[0],
                    " ".join(invocation.words),
                )
            if name == "signoffs" and invocation.edit:
                return await self.signoffs.dismiss(asker, found.repository, found.name, invocation.members)
            if name in WITH_VALUE:
                assert invocation.option is not None
                return await self.change(asker, name, found.repository, found.name, invocation.option, invocation.words)
            return await self.run(Query(name, found.repository, found.name, invocation.option))
        if resolution.ambiguous:
            if name == "signoff" or invocation.edit or name in WITH_VALUE:
                # Buttons only run reads again: a write names its repository.
                after = f" {invocation.edit} …" if invocation.edit else ""
                return replies.name_the_repository(resolution, self.command, name, after)
            return replies.choose_repository(resolution, query, self.command)
        return replies.not_found(resolution, scope)

    async def change(
        self, asker: Asker, name: str, repository: str, milestone: str, value: str, words: tuple[str, ...]
    ) -> Message:
        """clone, tag and start: a change to one milestone by its approvers or a workspace admin,
        answered with what it did."""
        if not await self.signoffs.may_change(asker, repository, milestone):
            return refused(f"only {milestone}'s approvers and workspace admins can {name} it")
        if name == "clone":
            due = date.fromisoformat(words[0]) if words else None
            try:
                clone = await services.clone_milestone(repository, milestone, value, target_date=due)
            except ValueError as refusal:
                return replies.failure(str(refusal))
            return replies.done(clone_text(clone.milestone.name, clone.source, clone.policy_entry, clone.github))
        if name == "tag":
            await services.save_milestone(repository, milestone, tags=[value])
            return replies.done(f"{milestone} is tagged {value}: `{self.command} list tag:{value}` lists its tag")
        start = date.fromisoformat(value)
        _, change = await services.save_milestone(repository, milestone, start_date=start)
        return replies.done(
            f"{milestone} starts on {start:%a} {start.day} {start:%b %Y}: {change.verdict.lifecycle.value}"
        )

    async def run(self, query: Query) -> Message:
        """A read with everything named: what Refresh and Share run again.

        Raises NotFound when the milestone went away since the button was made."""
        if query.subcommand == "list":
            tag = query.option.removeprefix(TAG_PREFIX) if query.option else None
            summaries = await services.list_milestones([query.repository] if query.repository else None, tag=tag)
            return milestone_list(
                summaries, scope=query.repository, command=self.command, today=utcnow().date(), tag=tag
            )
        assert query.repository and query.milestone
        reading = await services.read_milestone(query.repository, query.milestone)
        links = Links(self.page_url(reading.repository, reading.name, page_section(reading.verdict)))
        now = utcnow()
        if query.subcommand == "status":
            return status_card(reading, command=self.command, links=links, now=now)
        if query.subcommand == "defects":
            return milestone_defects(reading, query.option, command=self.command, links=links)
        if query.subcommand == "tests":
            return milestone_tests(reading, query.option, command=self.command, links=links)
        if query.subcommand == "signoffs":
            return await self.signoffs.trail(reading.repository, reading.name)
        if query.subcommand == "approvers":
            return await self.signoffs.approvers(reading.repository, reading.name)
        if query.subcommand == "quarantine":
            return quarantine_list(reading, command=self.command)
        history = await milestone_history(reading.milestone_id, now.date())
        return milestone_trend(reading, history, command=self.command, links=links)

    async def home(self, team_id: str, user_id: str) -> dict[str, Any]:
        linked = await channels.linked_repositories(team_id)
        everything = await services.list_milestones()
        milestones = [summary for summary in everything if not linked or summary.repository in linked]
        # A sign-off waits on the person wherever its repository is discussed.
        awaiting = await services.awaiting_signoff(user_id, everything)
        now = utcnow()
        return home_view(milestones, awaiting, linked=bool(linked), command=self.command, today=now.date(), now=now)
