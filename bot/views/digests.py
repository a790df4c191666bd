"""Digests in Slack: the digest itself, with what changed since the previous one, and the
answers to subscribe, unsubscribe and subscriptions. Pure functions from data to Block Kit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.views.blocks import (
    MESSAGE_BLOCKS,
    Block,
    Message,
    context,
    divider,
    escape,
    header,
    line_sections,
    link,
    mention,
    section,
)
from bot.views.milestones import (
    LIFECYCLE_LABEL,
    STATUS_EMOJI,
    STATUS_LABEL,
    completion_line,
    criterion_line,
    due_text,
    forecast_line,
    slack_time,
    trend_line,
    triage_lines,
)
from core.alerts import Alert
from core.digests import Changes, SubscriptionView
from core.enums import SEVERITY_ORDER
from core.readings import MilestoneReading
from core.wording import clip, listed, plural

# Blocks a milestone takes in a digest, and room kept for the header and the footer.
CARD_BLOCKS = 4
DIGEST_CARDS = (MESSAGE_BLOCKS - 4) // CARD_BLOCKS
# Tests and defects named in one alert; the rest are counted.
ALERT_TESTS = 30
DIGEST_CLUSTERS = 3
# Quarantine moves and fixes to verify named in one alert, beside its failing tests.
ALERT_NOTES = 10


def digest_message(
    items: Sequence[tuple[MilestoneReading, Changes]], *, scope: str, now: datetime, command: str = "/milestone"
) -> Message:
    """Worst first, each with what changed since the previous digest; one line when nothing did."""
    if not items:
        text = f"Digest for {scope}: no open milestones."
        return Message(escape(text), [section(f":calendar: {escape(text)}")], response_type="in_channel")
    if all(changes.nothing for _, changes in items):
        states = ", ".join(f"{reading.name} {STATUS_LABEL[reading.verdict.status].lower()}" for reading, _ in items)
        text = f"Nothing new since the last digest for {scope}: {states}."
        return Message(escape(text), [section(f":zzz: {escape(text)}")], response_type="in_channel")
    blocks: list[Block] = [header(f"Milestones digest · {scope}")]
    for reading, changes in items[:DIGEST_CARDS]:
        blocks += milestone_card(reading, changes, command)
    if len(items) > DIGEST_CARDS:
        rest = ", ".join(
            f"{reading.name} ({STATUS_LABEL[reading.verdict.status].lower()})" for reading, _ in items[DIGEST_CARDS:]
        )
        blocks.append(context(escape(f"…and {len(items) - DIGEST_CARDS} more: {rest}")))
    blocks.append(context(f"As of {slack_time(now)}"))
    worst = items[0][0]
    text = f"Digest for {scope}: {plural(len(items), 'milestone')}; {worst.name} is {STATUS_LABEL[worst.verdict.status].lower()}"
    return Message(escape(text), blocks[:MESSAGE_BLOCKS], response_type="in_channel")


def milestone_card(reading: MilestoneReading, changes: Changes, command: str) -> list[Block]:
    verdict = reading.verdict
    title = (
        f"{STATUS_EMOJI[verdict.status]} *{escape(reading.name)}* ({escape(reading.repository)}) · "
        f"*{STATUS_LABEL[verdict.status]}* · _{LIFECYCLE_LABEL[verdict.lifecycle]}_ · "
        f"{completion_line(verdict.completion)} · {due_text(verdict.target_date, verdict.days_left, verdict.overdue)}"
    )
    criteria = "\n".join(criterion_line(item) for item in verdict.criteria)
    triage = triage_lines(reading, command, clusters=DIGEST_CLUSTERS)
    if triage:
        criteria += "\n" + "\n".join(triage)
    return [
        divider(),
        section(f"{title}\n{criteria}"),
        section(f"*Since the last digest* {change_text(changes)}"),
        context(trend_line(reading), forecast_line(reading)),
    ]


def change_text(changes: Changes) -> str:
    if changes.first:
        return "this is the first digest here."
    if changes.nothing:
        return "nothing changed."
    parts = []
    if changes.status_before:
        parts.append(f"was {changes.status_before.replace('_', ' ')}")
    if changes.completion_delta:
        parts.append(f"completion {changes.completion_delta:+d} pts")
    if changes.pass_rate_delta:
        parts.append(f"pass rate {changes.pass_rate_delta * 100:+.1f} pts")
    if changes.new_defects:
        parts.append("new defects: " + _severities(changes.new_defects))
    if changes.closed_defects:
        parts.append("closed: " + _severities(changes.closed_defects))
    if changes.new_failing:
        parts.append(
            f"{plural(len(changes.new_failing), 'new failing test')}: " + escape(listed(changes.new_failing, 5))
        )
    if changes.fixed:
        parts.append(f"{plural(len(changes.fixed), 'test')} fixed: " + escape(listed(changes.fixed, 5)))
    if changes.newly_known:
        parts.append(
            f"{plural(len(changes.newly_known), 'failure')} now known: " + escape(listed(changes.newly_known, 5))
        )
    if changes.quarantined:
        parts.append("quarantined: " + escape(listed(changes.quarantined, 5)))
    if changes.released:
        parts.append("out of quarantine: " + escape(listed(changes.released, 5)))
    if changes.new_approvals:
        parts.append("approved by " + listed([mention(user) for user in changes.new_approvals]))
    return " · ".join(parts)


def _severities(counts: dict[str, int]) -> str:
    order = [severity.value for severity in SEVERITY_ORDER]
    return ", ".join(f"{counts[severity]} {severity}" for severity in sorted(counts, key=order.index))


def subscribed(view: SubscriptionView, created: bool, *, now: datetime) -> Message:
    verb = "Subscribed" if created else "Changed"
    first = view.schedule.next_fire(now)
    text = f"{verb}: a digest of {view.scope} here, {view.schedule.describe()}."
    return Message(escape(text), [section(f":calendar: {escape(text)} The next one: {slack_time(first)}.")])


def unsubscribed(removed: Sequence[SubscriptionView]) -> Message:
    if not removed:
        return Message("This channel had no such subscription.", [section("This channel had no such subscription.")])
    text = "No more digests here of " + ", ".join(view.scope for view in removed) + "."
    return Message(escape(text), [section(f":no_bell: {escape(text)}")])


def subscriptions_message(views: Sequence[SubscriptionView], *, command: str, now: datetime) -> Message:
    if not views:
        text = f"No digests in this channel. `{command} subscribe` starts one."
        return Message(escape(text), [section(text)])
    lines = [
        f":calendar: *{escape(view.scope)}* {escape(view.schedule.describe())} · next {slack_time(view.schedule.next_fire(now))}"
        for view in views
    ]
    return Message(f"{plural(len(views), 'digest')} in this channel", [section("\n".join(lines[:40]))])


def alert_message(reading: MilestoneReading, news: Alert) -> Message:
    """One message with everything new about the milestone."""
    verdict = reading.verdict
    name = f"*{escape(reading.name)}* ({escape(reading.repository)})"
    lines = []
    if news.turned_red:
        lines.append(f":red_circle: {name} turned red: {escape(verdict.what_blocks_signoff)}")
    if news.turned_green:
        lines.append(f":large_green_circle: {name} turned green: tests, defects and coverage are met")
    if news.regressions:
        names = "\n".join(f"• `{escape(test)}`" for test in news.regressions[:ALERT_TESTS])
        more = f"\n…and {len(news.regressions) - ALERT_TESTS:,} more" if len(news.regressions) > ALERT_TESTS else ""
        lines.append(f":x: {plural(len(news.regressions), 'required test')} started failing in {name}:\n{names}{more}")
    if news.defects:
        defects = {defect.number: defect for defect in reading.facts.defects}
        for number, severity in list(news.defects.items())[:ALERT_TESTS]:
            defect = defects.get(int(number))
            title = link(defect.url, f"#{number} {defect.title}") if defect else f"#{number}"
            lines.append(f":beetle: new {severity} defect in {name}: {title}")
    if news.quarantined:
        for test, why in list(news.quarantined.items())[:ALERT_NOTES]:
            lines.append(
                f":double_vertical_bar: `{escape(clip(test, 200))}` went into quarantine in {name}: {escape(clip(why, 200))}"
            )
        if len(news.quarantined) > ALERT_NOTES:
            lines.append(f"…and {len(news.quarantined) - ALERT_NOTES:,} more tests went into quarantine")
    if news.released:
        names = listed([f"`{escape(clip(test, 200))}`" for test in news.released], ALERT_NOTES)
        lines.append(f":arrow_forward: out of quarantine in {name}, counting again: {names}")
    if news.ready_to_verify:
        ready = {entry.defect.number: entry.defect for entry in verdict.triage.ready_to_verify}
        for fixed in news.ready_to_verify[:ALERT_NOTES]:
            found = ready.get(fixed)
            title = link(found.url, f"#{fixed} {clip(found.title, 150)}") if found else f"#{fixed}"
            lines.append(f":mag: ready to verify in {name}: {title}; every test it broke passes since it was resolved")
    if news.overdue:
        lines.append(
            f":alarm_clock: {name} is overdue: it was due {verdict.target_date} and is {STATUS_LABEL[verdict.status].lower()}"
        )
    elif news.due_soon:
        lines.append(
            f":hourglass: {name} is {due_text(verdict.target_date, verdict.days_left, verdict.overdue)} and not green yet"
        )
    text = f"{reading.name} ({reading.repository}): " + "; ".join(
        part
        for part, present in (
            ("turned red", news.turned_red),
            ("turned green", news.turned_green),
            (f"{plural(len(news.regressions), 'test')} started failing", bool(news.regressions)),
            (f"{plural(len(news.defects), 'new critical or high defect')}", bool(news.defects)),
            (f"{plural(len(news.quarantined), 'test')} quarantined", bool(news.quarantined)),
            (f"{plural(len(news.released), 'test')} out of quarantine", bool(news.released)),
            (f"{plural(len(news.ready_to_verify), 'defect')} ready to verify", bool(news.ready_to_verify)),
            ("overdue", news.overdue),
            ("due soon", news.due_soon and not news.overdue),
        )
        if present
    )
    return Message(
        escape(text), line_sections(lines, max_sections=10, more="…and {count} more"), response_type="in_channel"
    )
