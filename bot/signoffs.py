"""Sign-off through Slack: requests posted and kept up to date, decisions from buttons,
approvers, and what approvers and channels are told.

Who decides is always the user of Slack's verified payload; a button's value only names
the milestone, and a click counts only on the live request message it was made on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.command_line import Asker, typed
from bot.slack_api import post_in_channels, post_once
from bot.views import replies
from bot.views.blocks import Message, escape
from bot.views.milestones import quarantine_list
from bot.views.signoff import (
    approvers_message,
    completion_notice,
    dismissal_notice,
    not_an_approver,
    refused,
    reject_modal,
    replaced_message,
    request_message,
    request_posted,
    trail_message,
)
from core import outbox, services
from core.approvers import Approvers, as_handle, check_entry, is_user
from core.backoff import Backoff
from core.catalog import milestone_policy
from core.channels import channels_of
from core.clock import utcnow
from core.enums import Decision
from core.readings import SignoffState

log = logging.getLogger("milestones.slack")

# Slack's answers for a channel or message the app cannot reach (any more).
UNREACHABLE = {"not_in_channel", "channel_not_found", "is_archived", "message_not_found", "cant_update_message"}
OUT_OF_DATE = Message("This button is out of date: it does not belong to a sign-off request.")
# The metadata event of a sign-off request's message.
REQUEST_EVENT = "milestone_signoff_request"
# User groups read from Slack this lately are not read again for a request or a click.
GROUPS_FRESH = timedelta(minutes=1)


@dataclass(frozen=True)
class Click:
    """A press on a sign-off request's button, as Slack's verified payload tells it."""

    user_id: str
    user_name: str | None
    team_id: str
    channel_id: str
    message_ts: str
    milestone_id: int | None

    @classmethod
    def on_message(cls, body: dict[str, Any], value: str) -> Click:
        container = body.get("container") or {}
        return cls(
            body["user"]["id"],
            body["user"].get("name"),
            (body.get("team") or {}).get("id", ""),
            container.get("channel_id") or (body.get("channel") or {}).get("id", ""),
            container.get("message_ts", ""),
            _milestone_id(value),
        )

    @classmethod
    def in_modal(cls, body: dict[str, Any]) -> Click:
        try:
            where = json.loads(body["view"].get("private_metadata") or "{}")
        except ValueError:
            where = {}
        return cls(
            body["user"]["id"],
            body["user"].get("name"),
            (body.get("team") or {}).get("id", ""),
            str(where.get("channel", "")),
            str(where.get("ts", "")),
            where.get("milestone"),
        )


def _milestone_id(value: str) -> int | None:
    try:
        found = json.loads(value).get("milestone")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, int) else None


def digest(message: Message) -> str:
    return hashlib.sha256(json.dumps(message.payload(), sort_keys=True).encode()).hexdigest()


class Signoffs:
    def __init__(self, client: AsyncWebClient, command: str):
        self.client = client
        self.command = command
        # Called when a decision owes Slack an update, so that it goes out now (web.py sets it).
        self.notices_due: Callable[[], None] = lambda: None
        # Someone waits for the answer: a request is tried again at once, not after seconds.
        self.interactive_backoff = Backoff(first_delay=timedelta(seconds=0.2), factor=2, max_attempts=3)

    # Commands ------------------------------------------------------------------------

    async def request(self, asker: Asker, repository: str, name: str) -> Message:
        """Post a sign-off request in the asker's channel; it replaces the milestone's live one."""
        state = await self._state(repository, name)
        if not state.approvers.entries:
            return replies.failure(
                f"{state.reading.name} has no approvers, so there is nobody to ask. "
                f"Name them in the policy file, or with `{self.command} approvers {typed(state.reading.name)} add @person`"
            )
        requested_at = utcnow().replace(microsecond=0)
        message = request_message(state, requested_by=asker.user_id, requested_at=requested_at, command=self.command)
        # Names this request's message: a post whose answer was lost is found, not posted again.
        marker = {"event_type": REQUEST_EVENT, "event_payload": {"request": uuid.uuid4().hex}}
        try:
            ts = await post_once(self.client, asker.channel_id, message, marker, backoff=self.interactive_backoff)
        except SlackApiError as error:
            if error.response.get("error") in UNREACHABLE:
                return replies.failure(
                    "I cannot post in this channel. Invite me (`/invite @Milestone gate`) and ask again"
                )
            raise
        try:
            _, replaced = await services.open_signoff_request(
                repository,
                name,
                team_id=asker.team_id,
                channel_id=asker.channel_id,
                message_ts=ts,
                requested_by=asker.user_id,
                requested_at=requested_at,
                shown_digest=digest(message),
            )
        except Exception:
            # Not recorded: buttons on it would answer "out of date", so take it down.
            await self.client.chat_delete(channel=asker.channel_id, ts=ts)
            raise
        self.notices_due()
        return request_posted(state.reading.name, replaced is not None)

    async def trail(self, repository: str, name: str) -> Message:
        return trail_message(await services.signoff_state(repository, name), command=self.command)

    async def approvers(self, repository: str, name: str, note: str = "") -> Message:
        return approvers_message(await self._state(repository, name), command=self.command, note=note)

    async def edit_approvers(
        self, asker: Asker, repository: str, name: str, edit: str, members: Sequence[str]
    ) -> Message:
        # Checked before anything else: a refused edit reads nothing from Slack and writes nothing.
        try:
            members = [check_entry(member) for member in members]
        except ValueError as error:
            return replies.failure(str(error))
        _, current = await services.milestone_approvers(repository, name)
        # An approver needs no look-up; anyone else may be a workspace admin, which only Slack knows.
        needs_admin = current.source != "policy" and asker.user_id not in current
        by_admin = needs_admin and await self._is_admin(asker.user_id)
        try:
            services.check_approver_edit(repository, name, current, by=asker.user_id, by_admin=by_admin)
        except services.SignoffRefused as refusal:
            return refused(str(refusal))
        groups = [member for member in members if not is_user(member)]
        if edit == "add" and groups:
            try:
                known = await self.refresh_groups(groups, max_age=None)
            except SlackApiError as error:
                return replies.failure(
                    f"Slack did not list its user groups ({error.response.get('error')}); please try again"
                )
            unknown = [group for group in groups if known.get(group) is None]
            if unknown:
                return replies.failure(f"There is no user group {', '.join(unknown)} in this workspace")
        change = {"add": members} if edit == "add" else {"remove": members}
        try:
            await services.edit_approvers(repository, name, by=asker.user_id, by_admin=by_admin, **change)
        except services.SignoffRefused as refusal:
            return refused(str(refusal))
        self.notices_due()
        done = "Added" if edit == "add" else "Removed"
        return await self.approvers(repository, name, note=f"{done} by <@{asker.user_id}>.")

    async def may_change(self, asker: Asker, repository: str, name: str) -> bool:
        """Whether `asker` may clone, tag or reschedule the milestone: one of its approvers (no
        look-up needed) or a workspace admin (which only Slack knows)."""
        _, current = await services.milestone_approvers(repository, name)
        return asker.user_id in current or await self._is_admin(asker.user_id)

    async def edit_quarantine(
        self, asker: Asker, repository: str, name: str, edit: str, test: str, reason: str
    ) -> Message:
        """Approvers and workspace admins put tests into quarantine and take them out; the channels
        linked to the repository hear of it with the next alert."""
        change = {"add": test} if edit == "add" else {"remove": test}
        try:
            done = await services.edit_quarantine(
                repository,
                name,
                by=asker.user_id,
                by_admin=await self._is_admin(asker.user_id),
                reason=reason,
                **change,
            )
        except services.QuarantineRefused as refusal:
            return refused(str(refusal))
        self.notices_due()
        verb = "Quarantined" if edit == "add" else "Released"
        reading = await services.read_milestone(repository, name)
        note = f"{verb} by <@{asker.user_id}>: " + ", ".join(f"`{escape(test)}`" for test in done.tests[:20])
        return quarantine_list(reading, command=self.command, note=note)

    async def dismiss(self, asker: Asker, repository: str, name: str, members: Sequence[str]) -> Message:
        """A workspace admin ends people's standing decisions; the trail says who did."""
        if any(not is_user(member) for member in members):
            return replies.failure("Dismiss names people, not user groups")
        by_admin = await self._is_admin(asker.user_id)
        ended = []
        for member in members:
            try:
                outcome = await services.dismiss_decision(repository, name, member, by=asker.user_id, by_admin=by_admin)
            except services.SignoffRefused as refusal:
                return refused(str(refusal))
            if outcome is not None:
                ended.append(member)
        self.notices_due()
        note = (
            f"Dismissed by <@{asker.user_id}>: "
            + (", ".join(f"<@{member}>" for member in ended) or "nobody had a standing decision")
            + "."
        )
        return trail_message(await services.signoff_state(repository, name), command=self.command, note=note)

    async def _state(self, repository: str, name: str) -> SignoffState:
        """The milestone's sign-off, its user groups read from Slack first if not lately."""
        await self._refresh_groups_of(repository, name)
        return await services.signoff_state(repository, name)

    async def _refresh_groups_of(self, repository: str, name: str) -> tuple[Approvers, bool]:
        """The milestone's approvers, with their user groups read from Slack first if not lately;
        and whether they were read just now."""
        _, approvers = await services.milestone_approvers(repository, name)
        if approvers.groups and await self._refresh_quietly(approvers.groups):
            _, approvers = await services.milestone_approvers(repository, name)
            return approvers, True
        return approvers, False

    # Buttons ---------------------------------------------------------------------------

    async def decide(
        self, click: Click, decision: Decision, comment: str = "", *, ask_slack: bool = True
    ) -> Message | None:
        """Record the click's decision; a private answer when it was refused or changed nothing.

        Group approvers are checked against their members as read from Slack in the last
        minute; someone not among them is checked again against Slack itself. With
        `ask_slack` off (a modal's submission, which must be answered at once) the members
        read when the modal opened serve."""
        found = await self._live_request(click)
        if isinstance(found, Message):
            return found
        repository, name = found.repository, found.milestone
        just_read = ask_slack and (await self._refresh_groups_of(repository, name))[1]
        try:
            return await self._record(click, repository, name, decision, comment)
        except services.NotAnApprover as refusal:
            if not ask_slack or just_read or not refusal.approvers.groups:
                return not_an_approver(refusal.milestone, refusal.approvers)
            groups = refusal.approvers.groups
        await self._refresh_quietly(groups, max_age=None)
        try:
            return await self._record(click, repository, name, decision, comment)
        except services.NotAnApprover as again:
            return not_an_approver(again.milestone, again.approvers)

    async def _record(
        self, click: Click, repository: str, name: str, decision: Decision, comment: str
    ) -> Message | None:
        try:
            if decision is Decision.WITHDRAW:
                if await services.withdraw_decision(repository, name, click.user_id) is None:
                    return Message(f"You have no standing decision on {escape(name)} to withdraw.")
            else:
                assert decision is not Decision.DISMISS, "a button approves, rejects or withdraws"
                outcome = await services.record_decision(
                    repository,
                    name,
                    click.user_id,
                    decision,
                    comment=comment,
                    user_name=click.user_name,
                )
                if not outcome.recorded:
                    verb = "approved" if decision is Decision.APPROVE else "rejected"
                    return Message(f"You {verb} {escape(name)} already; nothing changed.")
        except services.SignoffRefused as refusal:
            if isinstance(refusal, services.NotAnApprover):
                raise  # decide() may ask Slack for the groups' members and try again
            return refused(str(refusal))
        self.notices_due()
        return None

    async def ask_reason(self, click: Click, trigger_id: str) -> Message | None:
        """Reject opens a modal for the reason at once (the trigger lasts 3 seconds); someone
        who is not an approver is told so instead."""
        found = await self._live_request(click)
        if isinstance(found, Message):
            return found
        approvers, just_read = await self._refresh_groups_of(found.repository, found.milestone)
        if click.user_id not in approvers and approvers.groups and not just_read:
            await self._refresh_quietly(approvers.groups, max_age=None)
            _, approvers = await services.milestone_approvers(found.repository, found.milestone)
        if click.user_id not in approvers:
            return not_an_approver(found.milestone, approvers)
        state = await services.signoff_state(found.repository, found.milestone)
        await self.client.views_open(
            trigger_id=trigger_id, view=reject_modal(state, channel_id=click.channel_id, message_ts=click.message_ts)
        )
        return None

    async def _live_request(self, click: Click) -> services.RequestAt | Message:
        found = await services.signoff_request_at(click.channel_id, click.message_ts)
        if found is None or click.milestone_id != found.request.milestone_id or click.team_id != found.request.team_id:
            return OUT_OF_DATE
        if not found.live:
            link = await self._permalink(found.replacement) if found.replacement else None
            where = f": <{link}|the new request>" if link else ""
            return Message(f"This sign-off request was replaced by a newer one{where}. Nothing was recorded.")
        return found

    # Slack lookups ---------------------------------------------------------------------

    async def refresh_groups(
        self, handles: Sequence[str], *, max_age: timedelta | None = GROUPS_FRESH
    ) -> dict[str, str | None]:
        """Read the members of these user groups from Slack into the store, those not read within
        `max_age` (None: all); returns handle -> group id (None: no such group) of those read.
        Slack's usergroups methods allow about 20 calls a minute, hence the age."""
        handles = list(dict.fromkeys(as_handle(handle) for handle in handles))
        if max_age is not None and handles:
            handles = await services.stale_user_groups(handles, max_age)
        if not handles:
            return {}
        listing = await self.client.usergroups_list()
        usergroups: list[dict[str, Any]] = listing.get("usergroups", [])
        ids = {as_handle(group["handle"]): group["id"] for group in usergroups}
        groups: dict[str, tuple[str | None, list[str]]] = {}
        for handle in handles:
            group_id = ids.get(handle)
            members = (await self.client.usergroups_users_list(usergroup=group_id))["users"] if group_id else []
            groups[handle] = (group_id, members)
        await services.store_user_groups(groups)
        return {handle: group_id for handle, (group_id, _) in groups.items()}

    async def _refresh_quietly(
        self, handles: Sequence[str], *, max_age: timedelta | None = GROUPS_FRESH
    ) -> dict[str, str | None]:
        """As refresh_groups; when Slack cannot be read, what was stored stands."""
        try:
            return await self.refresh_groups(handles, max_age=max_age)
        except SlackApiError as error:
            log.warning("could not read user groups %s: %s", ", ".join(handles), error.response.get("error"))
            return {}

    async def _is_admin(self, user_id: str) -> bool:
        user = (await self.client.users_info(user=user_id))["user"]
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))

    async def _permalink(self, request: Any) -> str | None:
        try:
            answer = await self.client.chat_getPermalink(channel=request.channel_id, message_ts=request.message_ts)
        except SlackApiError as error:
            log.warning(
                "no permalink for %s/%s: %s", request.channel_id, request.message_ts, error.response.get("error")
            )
            return None
        return answer.get("permalink")

    # Owed work (core.outbox) -----------------------------------------------------------

    def handlers(self) -> dict[str, outbox.Handler]:
        return {
            outbox.SIGNOFF_REQUEST: lambda item: self.update_request(item.subject),
            outbox.SIGNOFF_DISMISSAL: lambda item: self.tell_dismissed(item.subject),
            outbox.MILESTONE_COMPLETION: lambda item: self.announce_completion(item.subject),
        }

    async def update_request(self, request_id: int) -> str | None:
        """Bring a request's message up to date (chat.update), or point a replaced one to the new one."""
        found = await services.signoff_request(request_id)
        if found is None:
            return None
        request = found.request
        state = await services.signoff_state(found.repository, found.milestone)
        if found.live:
            message = request_message(
                state, requested_by=request.requested_by, requested_at=request.created_at, command=self.command
            )
        else:
            link = await self._permalink(found.replacement) if found.replacement else None
            message = replaced_message(state, permalink=link)
        shown = digest(message)
        if shown == request.shown_digest:
            return None
        try:
            await self.client.chat_update(channel=request.channel_id, ts=request.message_ts, **message.posted())
        except SlackApiError as error:
            if error.response.get("error") not in UNREACHABLE:
                raise
            await services.request_shown(request_id, shown)
            return f"message gone ({error.response.get('error')}); not updated"
        await services.request_shown(request_id, shown)
        return "request message updated"

    async def tell_dismissed(self, entry_id: int) -> str | None:
        found = await services.signoff_entry(entry_id)
        if found is None or found[0].decision is not Decision.DISMISS:
            return None
        entry, repository, name = found
        state = await services.signoff_state(repository, name)
        live = await services.live_request(entry.milestone_id)
        link = await self._permalink(live) if live else None
        message = dismissal_notice(state, entry, request_link=link)
        # To the user id: the app's direct messages with them.
        await self.client.chat_postMessage(channel=entry.user_id, **message.posted())
        return f"told {entry.user_id} their approval was dismissed"

    async def announce_completion(self, milestone_id: int) -> str | None:
        """Tell the linked channels that take alerts (and the live request's) that the milestone
        completed, or reopened.

        Said once per change of state: a completion that flips back before it is announced is not announced."""
        milestone = await services.milestone_by_id(milestone_id)
        if milestone is None:
            return None
        complete = milestone.completed_at is not None
        if milestone.announced_complete is complete or (milestone.announced_complete is None and not complete):
            return None
        repository = milestone.repository.full_name
        channels = await channels_of(repository, alerts=True) if milestone_policy(milestone).alerts else []
        live = await services.live_request(milestone.id)
        if live is not None and live.channel_id not in channels:
            channels.append(live.channel_id)
        message = completion_notice(await services.signoff_state(repository, milestone.name), complete=complete)
        await post_in_channels(self.client, channels, message)
        await services.completion_announced(milestone_id, complete)
        return f"{'completion' if complete else 'reopening'} announced in {len(channels)} channels"
