"""Sign-off in Slack: the request with its buttons, the reject modal, the trail, the approvers,
and what approvers and channels are told. Pure functions from data to Block Kit."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime

from bot.command_line import Query
from bot.views.blocks import (
    MESSAGE_BLOCKS,
    Block,
    Message,
    actions,
    button,
    context,
    escape,
    header,
    line_sections,
    mention,
    section,
)
from bot.views.milestones import (
    STATUS_EMOJI,
    STATUS_LABEL,
    criterion_line,
    due_text,
    headline,
    quoted,
    share_actions,
    slack_time,
)
from core.approvers import Approvers, is_user
from core.enums import Decision
from core.models import Signoff
from core.readings import SignoffState
from core.services.signoffs import REASON_LIMIT
from core.wording import clip, listed, plural

APPROVE_ACTION = "signoff_approve"
REJECT_ACTION = "signoff_reject"
WITHDRAW_ACTION = "signoff_withdraw"
REJECT_CALLBACK = "signoff_reject_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
REASON_MAX = REASON_LIMIT
REASON_ERROR = 150
APPROVER_LINES = 40
TRAIL_LINES = 80

TRAIL_VERB = {
    Decision.APPROVE: (":white_check_mark:", "approved"),
    Decision.REJECT: (":no_entry:", "rejected"),
    Decision.WITHDRAW: (":leftwards_arrow_with_hook:", "withdrew their decision"),
    Decision.DISMISS: (":warning:", "dismissed"),
}


def who(entry: str) -> str:
    """An approver entry: a person as a mention, a user group by its handle."""
    return mention(entry) if is_user(entry) else f"*{escape(entry)}*"


def request_message(state: SignoffState, *, requested_by: str, requested_at: datetime, command: str) -> Message:
    """The sign-off request, kept up to date in place as decisions come in."""
    reading, verdict = state.reading, state.reading.verdict
    policy = reading.facts.policy
    blocks: list[Block] = [header(f"Sign-off: {reading.name} · {reading.repository}")]
    status = f"{STATUS_EMOJI[verdict.status]} *{STATUS_LABEL[verdict.status]}* · " + due_text(
        verdict.target_date, verdict.days_left, verdict.overdue
    )
    blocks.append(section(f"{mention(requested_by)} asks for sign-off of *{escape(reading.name)}*.\n{status}"))
    blocks.append(section("\n".join(criterion_line(item) for item in verdict.criteria)))
    if state.completed_at is not None:
        approvers = listed([mention(item["user"]) for item in state.completed_with]) or "no approvals needed"
        blocks.append(section(f":tada: *Complete* since {slack_time(state.completed_at)} · approved by {approvers}"))
    elif not verdict.gate_green and not policy.signoff.allow_early_signoff:
        blocking = escape(verdict.what_blocks_signoff)
        blocks.append(
            section(f":lock: *Approval opens when tests, defects and coverage are met.* Still blocking: {blocking}")
        )
    lines = approver_lines(state)
    blocks += line_sections(lines, max_sections=3, max_lines=APPROVER_LINES, more="…and {count} more approvers")
    dismissed = [
        entry for entry in state.trail if entry.decision is Decision.DISMISS and entry.created_at >= requested_at
    ]
    if dismissed:
        ended = ended_decisions(state.trail)
        recent = [
            f":warning: {ended.get(entry.ends_id, 'decision')} by {mention(entry.user_id)} dismissed "
            f"{slack_time(entry.created_at)}: {escape(clip(entry.comment, 300))}"
            for entry in dismissed[-3:]
        ]
        blocks.append(section("\n".join(recent)))
    blocks.append(
        actions(
            button("Approve", APPROVE_ACTION, value=_value(state), style="primary"),
            button("Reject", REJECT_ACTION, value=_value(state), style="danger"),
            button("Withdraw my decision", WITHDRAW_ACTION, value=_value(state)),
            block_id="signoff_actions",
        )
    )
    blocks.append(
        context(
            f"Requested by {mention(requested_by)} {slack_time(requested_at)} · "
            f"the whole trail: `{command} signoffs {quoted(reading.name)}`"
        )
    )
    text = (
        escape(f"Sign-off of {reading.name} ({reading.repository})")
        + f" requested by {mention(requested_by)}: "
        + escape(headline(reading))
    )
    return Message(text, blocks[:MESSAGE_BLOCKS], response_type="in_channel")


def _value(state: SignoffState) -> str:
    # Names the milestone so that a click can be checked against the request it lands on; grants nothing.
    return json.dumps({"milestone": state.reading.milestone_id})


def approver_lines(state: SignoffState) -> list[str]:
    """One line per approver: approved, rejected (with why), or still to decide."""
    approvers = state.approvers
    numbers = state.reading.verdict.criteria.signoff.numbers
    if not approvers.entries:
        return ["*Approvers* none: nobody needs to sign off (`approvers` to name some)"]
    quorum = "all" if state.reading.facts.policy.signoff.quorum == "all" else f"{numbers.quorum}"
    lines = [
        f"*Approvers* · {numbers.approvals} of {numbers.quorum} approvals needed ({quorum} of {plural(len(approvers.users), 'approver')})"
    ]
    # First, as a long list is cut: a group nobody can approve for blocks the sign-off.
    for group in approvers.unresolved:
        lines.append(f":grey_question: {who(group)}: members not known (is it a user group of this workspace?)")
    standing = {entry.user_id: entry for entry in state.trail if entry.valid}
    for user in approvers.users:
        decision = standing.get(user)
        if decision is None:
            lines.append(f":hourglass_flowing_sand: {mention(user)} to decide")
        elif decision.decision is Decision.APPROVE:
            lines.append(f":white_check_mark: {mention(user)} approved {slack_time(decision.created_at)}")
        else:
            lines.append(
                f":no_entry: {mention(user)} rejected {slack_time(decision.created_at)}: “{escape(clip(decision.comment, 300))}”"
            )
    return lines


def replaced_message(state: SignoffState, *, permalink: str | None) -> Message:
    """A request a newer one replaced: no buttons, and where to go instead."""
    where = f"<{permalink}|the new request>" if permalink else "the new request"
    text = f"This sign-off request for {escape(state.reading.name)} ({escape(state.reading.repository)}) was replaced by {where}."
    return Message(
        f"Sign-off request for {escape(state.reading.name)} replaced",
        [section(f":arrow_right: {text}")],
        response_type="in_channel",
    )


def reject_modal(state: SignoffState, *, channel_id: str, message_ts: str) -> dict:
    return {
        "type": "modal",
        "callback_id": REJECT_CALLBACK,
        "private_metadata": json.dumps(
            {"channel": channel_id, "ts": message_ts, "milestone": state.reading.milestone_id}
        ),
        "title": {"type": "plain_text", "text": "Reject sign-off"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"Reject *{escape(state.reading.name)}* ({escape(state.reading.repository)}). It stays blocked until you withdraw the rejection."
            ),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why? (shown to everyone in the channel)"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": REASON_MAX,
                },
            },
        ],
    }


def not_an_approver(milestone: str, approvers: Approvers) -> Message:
    names = listed([who(entry) for entry in approvers.entries]) or "none yet"
    return Message(f"You are not an approver of {escape(milestone)} (approvers: {names}).")


def refused(reason: str) -> Message:
    return Message(f":no_entry_sign: {escape(reason[:1].upper() + reason[1:])}.")


def request_posted(milestone: str, replaced: bool) -> Message:
    note = " It replaces the earlier request, which now points here." if replaced else ""
    return Message(f"Sign-off request for {escape(milestone)} posted.{note}")


def trail_message(state: SignoffState, *, command: str, note: str = "") -> Message:
    reading = state.reading
    ended = ended_decisions(state.trail)
    lines = [trail_line(entry, ended) for entry in state.trail] or ["No sign-off decisions yet."]
    blocks: list[Block] = [header(f"Sign-off trail: {reading.name} · {reading.repository}")]
    if note:
        blocks.append(context(note))
    blocks.append(
        section(
            f"{STATUS_EMOJI[reading.verdict.status]} *{STATUS_LABEL[reading.verdict.status]}* · {escape(reading.verdict.criteria.signoff.summary)}"
        )
    )
    blocks += line_sections(
        lines,
        max_sections=6,
        max_lines=TRAIL_LINES,
        more=f"…and {{count}} earlier entries: `milestones status {quoted(reading.name)} --json` has them all",
    )
    blocks.append(share_actions(Query("signoffs", reading.repository, reading.name)))
    return Message(
        escape(
            f"Sign-off trail of {reading.name} ({reading.repository}): {plural(len(state.trail), 'entry', 'entries')}"
        ),
        blocks,
    )


def ended_decisions(trail: Sequence[Signoff]) -> dict[int | None, str]:
    """What each withdrawal or dismissal ended, by id: "approval" or "rejection"."""
    return {entry.id: "approval" if entry.decision is Decision.APPROVE else "rejection" for entry in trail}


def trail_line(entry: Signoff, ended: dict[int | None, str]) -> str:
    emoji, verb = TRAIL_VERB[entry.decision]
    when = slack_time(entry.created_at)
    if entry.decision is Decision.DISMISS:
        what = ended.get(entry.ends_id, "decision")
        line = f"{emoji} {when} the {what} by {mention(entry.user_id)} was dismissed"
    else:
        line = f"{emoji} {when} {mention(entry.user_id)} {verb}"
    comment = f": “{escape(clip(entry.comment, 300))}”" if entry.comment else ""
    standing = " _(standing)_" if entry.valid else ""
    where = " _(on the milestone page)_" if entry.via == "web" else ""
    return f"{line}{comment}{standing}{where}"


def approvers_message(state: SignoffState, *, command: str, note: str = "") -> Message:
    reading, approvers = state.reading, state.approvers
    where = {
        "policy": f"Set in {escape(reading.repository)}'s `.github/milestones.yml`; change them there.",
        "slack": f"Kept in Slack: approvers and workspace admins change them with `{command} approvers {quoted(reading.name)} add|remove @person`.",
        None: f"None yet: a workspace admin names the first with `{command} approvers {quoted(reading.name)} add @person`.",
    }[approvers.source]
    entries = listed([who(entry) for entry in approvers.entries]) or "nobody"
    people = listed([mention(user) for user in approvers.users])
    quorum = reading.facts.policy.signoff.quorum
    lines = [f"*Approvers of {escape(reading.name)}* ({escape(reading.repository)}): {entries}", where]
    if approvers.groups:
        lines.append(f"That is {plural(len(approvers.users), 'person', 'people')}: {people or 'none known yet'}")
    lines.append(f"Quorum: {'all of them' if quorum == 'all' else quorum}")
    blocks: list[Block] = [section("\n".join(lines))]
    if note:
        blocks.insert(0, context(note))
    blocks.append(share_actions(Query("approvers", reading.repository, reading.name)))
    return Message(escape(f"Approvers of {reading.name}: ") + entries, blocks)


def dismissal_notice(state: SignoffState, dismissal: Signoff, *, request_link: str | None) -> Message:
    """Told to an approver whose approval went stale."""
    reading = state.reading
    where = f" (<{request_link}|the request>)" if request_link else ""
    text = (
        f"Your approval of *{escape(reading.name)}* ({escape(reading.repository)}){where} was dismissed "
        f"{slack_time(dismissal.created_at)}: {escape(clip(dismissal.comment, 500))}. "
        "You can approve again once its tests, defects and coverage are met."
    )
    blocks = [
        section(f":warning: {text}"),
        section("\n".join(criterion_line(item) for item in reading.verdict.criteria.before_signoff)),
    ]
    return Message(
        f"Your approval of {escape(reading.name)} was dismissed: {escape(clip(dismissal.comment, 300))}", blocks
    )


def completion_notice(state: SignoffState, *, complete: bool) -> Message:
    reading = state.reading
    name = f"*{escape(reading.name)}* ({escape(reading.repository)})"
    if complete:
        approvers = listed([mention(item["user"]) for item in state.completed_with])
        signed = f", signed off by {approvers}" if approvers else ""
        text = f":tada: {name} is complete: all four criteria are met{signed}."
        fallback = f"{reading.name} ({reading.repository}) is complete"
    else:
        unmet = "; ".join(escape(item.summary) for item in reading.verdict.criteria if not item.met)
        text = f":rotating_light: {name} reopened: it was complete, and now {unmet}."
        fallback = f"{reading.name} ({reading.repository}) reopened: {unmet}"
    return Message(escape(fallback), [section(text)], response_type="in_channel")


def reason_error(reply: Message) -> dict:
    """A refusal shown under the reason field: plain text, where markup would show as typed."""
    text = re.sub(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", r"@\1", reply.text)
    text = re.sub(r"<[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"\*([^*]+)\*", r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return {"response_action": "errors", "errors": {REASON_BLOCK: clip(text, REASON_ERROR)}}
