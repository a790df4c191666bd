"""How milestones look in Slack: the list, the status card, and the defect, test and trend lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from bot.command_line import Query, typed
from bot.views.blocks import (
    MESSAGE_BLOCKS,
    SHARE_ACTION,
    Block,
    Message,
    actions,
    button,
    context,
    divider,
    escape,
    header,
    line_sections,
    link,
    mention,
    section,
    sparkline,
)
from core.enums import CriterionResult, Decision, DefectState, GateStatus, Lifecycle, Severity
from core.gate import NEVER_REPORTED, AnyCriterion, DefectFact, FailingTest, LaunchRef, TestFact
from core.history import History
from core.lifecycle import LIFECYCLE_TITLE
from core.lists import defects_list, pass_rate_change, tests_list, trend_title
from core.metrics import Direction
from core.readings import MilestoneReading, MilestoneSummary
from core.report import STATUS_TITLE, completion_text, criterion_text
from core.wording import clip, first_line, listed, percent, plural, progress_bar, short_sha

STATUS_EMOJI = {
    GateStatus.COMPLETE: ":white_check_mark:",
    GateStatus.READY_FOR_SIGNOFF: ":large_blue_circle:",
    GateStatus.AT_RISK: ":large_yellow_circle:",
    GateStatus.BLOCKED: ":red_circle:",
    GateStatus.NO_DATA: ":white_circle:",
}
STATUS_LABEL = {status: title.capitalize() for status, title in STATUS_TITLE.items()}
LIFECYCLE_LABEL = {lifecycle: title.capitalize() for lifecycle, title in LIFECYCLE_TITLE.items()}
CRITERION_EMOJI = {
    CriterionResult.MET: ":white_check_mark:",
    CriterionResult.NOT_MET: ":x:",
    CriterionResult.NO_DATA: ":heavy_minus_sign:",
}
SEVERITY_EMOJI = {
    Severity.CRITICAL: ":red_circle:",
    Severity.HIGH: ":large_orange_circle:",
    Severity.MEDIUM: ":large_yellow_circle:",
    Severity.LOW: ":white_circle:",
    Severity.NONE: ":black_circle:",
}
CARD_BLOCKERS = 5
# Lists leave room for the header, summary, "and N more" and the buttons; past a
# screenful or two, the milestone page reads better than a longer message.
LIST_SECTIONS = MESSAGE_BLOCKS - 10
LIST_LINES = 60
TREND_POINTS = 20
UNTESTED_NAMES = 8


@dataclass(frozen=True)
class Links:
    """Where the full lists live: the milestone page when PUBLIC_URL is set."""

    page: str | None = None

    def more(self, what: str, command: str) -> str:
        where = link(self.page, "the milestone page") if self.page else f"`{command}`"
        return f"…and {{count}} more {what}: see {where}"


# The list --------------------------------------------------------------------


def milestone_list(
    summaries: Sequence[MilestoneSummary], *, scope: str | None, command: str, today: date, tag: str | None = None
) -> Message:
    where = (f" in {scope}" if scope else "") + (f" tagged {tag}" if tag else "")
    if not summaries:
        return Message(
            f"No open milestones{where}.",
            [section(f"No open milestones{where}. They come from GitHub milestones and `.github/milestones.yml`.")],
        )
    several = len({summary.repository for summary in summaries}) > 1
    lines = [summary_line(summary, today, show_repository=several) for summary in summaries]
    worst = summaries[0]
    text = escape(
        f"{plural(len(summaries), 'open milestone')}{where}; most urgent: {worst.name} ({STATUS_LABEL[worst.status]})"
    )
    blocks = [
        header(f"Milestones{where}"),
        *line_sections(
            lines,
            max_sections=LIST_SECTIONS,
            max_lines=LIST_LINES,
            more=f"…and {{count}} more; `{command} list owner/repo` narrows it down",
        ),
        context(
            "Overdue and active first, then planned; worst first within each. "
            f"`{command} status <milestone>` for one in full, `{command} list tag:<tag>` for a tag."
        ),
        share_actions(Query("list", scope, option=f"tag:{tag}" if tag else None)),
    ]
    return Message(text, blocks)


def summary_line(summary: MilestoneSummary, today: date, *, show_repository: bool) -> str:
    repository = f" `{summary.repository}`" if show_repository else ""
    parts = [
        f"{STATUS_EMOJI[summary.status]} *{escape(summary.name)}*{repository} {STATUS_LABEL[summary.status]}"
        f" · _{LIFECYCLE_LABEL[summary.lifecycle]}_",
        completion_line(summary.completion),
    ]
    if summary.lifecycle is Lifecycle.PLANNED and summary.start_date:
        parts.append(f"starts {summary.start_date:%a} {summary.start_date.day} {summary.start_date:%b %Y}")
    parts.append(due_text(summary.target_date, summary.days_left, summary.overdue))
    if summary.pass_rate is not None:
        parts.append(f"pass rate {percent(summary.pass_rate)}")
    if summary.open_blocking:
        parts.append(plural(summary.open_blocking, "blocking defect"))
    if summary.tags:
        parts.append(" ".join(f"`{escape(tag)}`" for tag in summary.tags))
    return " · ".join(parts)


def completion_line(completion: int | None) -> str:
    """The completion figure with its bar; the terminal's words in code, so the bar lines up."""
    return f"`{completion_text(completion)}`"


def due_text(target: date | None, days_left: int | None, overdue: bool) -> str:
    if target is None or days_left is None:
        return "no target date"
    when = f"{target:%a} {target.day} {target:%b %Y}"
    if overdue:
        return f":alarm_clock: *overdue by {plural(-days_left, 'day')}* (due {when})"
    if days_left == 0:
        return f"due *today* ({when})"
    if days_left < 0:
        return f"was due {when}"
    return f"due {when} ({'tomorrow' if days_left == 1 else f'in {days_left} days'})"


# The status card -------------------------------------------------------------


def status_card(reading: MilestoneReading, *, command: str, links: Links, now: datetime) -> Message:
    verdict = reading.verdict
    status_line = (
        f"{STATUS_EMOJI[verdict.status]} *{STATUS_LABEL[verdict.status]}* · _{LIFECYCLE_LABEL[verdict.lifecycle]}_ · "
        f"{completion_line(verdict.completion)} · "
    )
    if verdict.lifecycle is Lifecycle.PLANNED and verdict.start_date:
        status_line += f"starts {verdict.start_date:%a} {verdict.start_date.day} {verdict.start_date:%b %Y} · "
    status_line += due_text(verdict.target_date, verdict.days_left, verdict.overdue)
    if reading.tags:
        status_line += " · " + " ".join(f"`{escape(tag)}`" for tag in reading.tags)
    if reading.description:
        status_line += "\n" + escape(clip(reading.description, 300))
    blocks: list[Block] = [header(f"{reading.name} · {reading.repository}"), section(status_line)]
    blocks.append(section("\n".join(criterion_line(item) for item in verdict.criteria)))
    if included := included_lines(reading):
        blocks += line_sections(
            ["*Included milestones*", *included], max_sections=2, max_lines=20, more="…and {count} more"
        )
    blocks.append(section(trend_line(reading) + "\n" + forecast_line(reading)))
    blockers = _blocker_lines(reading, command)
    if blockers:
        blocks.append(divider())
        # Whole lines per section: a cut through a link would show its markup.
        blocks += line_sections(["*What blocks*", *blockers], max_sections=4, more="")
    blocks.append(section(_signoff_line(reading)))
    if verdict.warnings:
        blocks.append(context(*(":warning: " + escape(warning) for warning in verdict.warnings[:3])))
    query = Query("status", reading.repository, reading.name)
    buttons = [button("Refresh", "refresh", value=query.encode())]
    if links.page:
        buttons.append(button("Open in browser", "open_page", url=links.page))
    buttons.append(share_button(query))
    blocks.append(actions(*buttons, block_id="milestone_actions"))
    blocks.append(context(f"Gate as of {slack_time(now)}"))
    return Message(escape(f"{reading.name} ({reading.repository}): {headline(reading)}"), blocks)


def included_lines(reading: MilestoneReading) -> list[str]:
    includes = reading.verdict.criteria.includes
    if includes is None:
        return []
    return [
        f"{STATUS_EMOJI[child.status]} *{escape(child.name)}* {STATUS_LABEL[child.status]} · "
        f"_{LIFECYCLE_LABEL[child.lifecycle]}_ · {completion_line(child.completion)}"
        for child in includes.numbers.milestones
    ]


def headline(reading: MilestoneReading) -> str:
    verdict = reading.verdict
    overdue = f", overdue by {plural(-(verdict.days_left or 0), 'day')}" if verdict.overdue else ""
    unmet = [item.summary for item in verdict.criteria if item.result is CriterionResult.NOT_MET]
    reasons = f": {'; '.join(unmet)}" if unmet else ""
    return f"{STATUS_LABEL[verdict.status]}{overdue}{reasons}"


def criterion_line(item: AnyCriterion) -> str:
    text = criterion_text(item)
    bar = f"`{progress_bar(text.progress)}` " if text.gauged else ""
    return f"{CRITERION_EMOJI[item.result]} *{text.title}* {bar}{escape(item.summary)}"


def trend_line(reading: MilestoneReading) -> str:
    points = list(reading.facts.trend)[-TREND_POINTS:]
    rates = sparkline(point.pass_rate for point in points)
    if not rates:
        return "*Trend* no history yet"
    direction = reading.verdict.metrics.direction
    lately = "" if direction is Direction.UNKNOWN else f" {direction.value}"
    blocking = sparkline(point.open_blocking for point in points)
    return f"*Trend* pass rate `{rates}`{lately} · blocking defects `{blocking}`"


def forecast_line(reading: MilestoneReading) -> str:
    forecast = reading.verdict.metrics.forecast
    when = f"{forecast.date:%a} {forecast.date.day} {forecast.date:%b}" if forecast.date else "no date"
    flag = " :warning:" if forecast.at_risk else ""
    return f"*Forecast* {when}: {escape(forecast.reason)}{flag}"


def _blocker_lines(reading: MilestoneReading, command: str) -> list[str]:
    blocking = reading.verdict.blocking
    name = quoted(reading.name)
    lines: list[str] = []
    lines += _capped(
        [failing_test_line(test) for test in blocking.failing_tests],
        f"required tests failing: `{command} tests {name}`",
    )
    lines += _capped(
        [defect_line(defect, blocking=True) for defect in blocking.defects],
        f"blocking defects: `{command} defects {name}`",
    )
    lines += _capped(
        [
            f":no_entry: rejected by {mention(rejection.user_id)}: {escape(clip(rejection.comment, 200))}"
            for rejection in blocking.rejections
        ],
        f"rejections: `{command} status {name}` after they are withdrawn",
    )
    areas = [
        f":grey_question: not run yet in *{escape(area.suite or 'no suite')}*: {plural(len(area.tests), 'test')}"
        for area in blocking.untested
    ]
    if not reading.verdict.criteria.coverage.met:
        lines += _capped(areas, f"areas not run: `{command} tests {name} untested`")
    return lines


def _capped(lines: list[str], more: str) -> list[str]:
    if len(lines) <= CARD_BLOCKERS:
        return lines
    return [*lines[:CARD_BLOCKERS], f"   …and {len(lines) - CARD_BLOCKERS:,} more {more}"]


def _signoff_line(reading: MilestoneReading) -> str:
    numbers = reading.verdict.criteria.signoff.numbers
    approvers = numbers.approvers
    if not approvers:
        return "*Sign-off* not required for this milestone"
    standing = {decision.user_id: decision for decision in reading.facts.decisions if decision.user_id in approvers}
    approved = [user for user, decision in standing.items() if decision.decision is Decision.APPROVE]
    parts = [f"*Sign-off* {numbers.approvals} of {numbers.quorum} approvals"]
    if approved:
        parts.append("approved by " + mentions(approved))
    waiting = [user for user in approvers if user not in standing]
    if waiting:
        parts.append("waiting for " + mentions(waiting))
    return " · ".join(parts)


def mentions(users: Sequence[str], shown: int = 10) -> str:
    return listed([mention(user) for user in users], shown)


# Lists -----------------------------------------------------------------------


def milestone_defects(reading: MilestoneReading, severity: str | None, *, command: str, links: Links) -> Message:
    listed_defects = defects_list(reading, severity)
    query = Query("defects", reading.repository, reading.name, severity)
    if not listed_defects.defects:
        return _list_message(reading, listed_defects.empty, [], more="", query=query)
    lines = [
        defect_line(defect, blocking=defect.number in listed_defects.blocking) for defect in listed_defects.defects
    ]
    more = links.more("defects", f"{command} defects {quoted(reading.name)}")
    return _list_message(reading, listed_defects.title, lines, more=more, query=query)


def milestone_tests(reading: MilestoneReading, kind: str | None, *, command: str, links: Links) -> Message:
    listed_tests = tests_list(reading, kind)
    kind = listed_tests.kind
    more = links.more(f"{kind} tests", f"{command} tests {quoted(reading.name)} {kind}")
    query = Query("tests", reading.repository, reading.name, kind)
    if kind == "untested":
        lines = [_untested_line(area.suite, area.tests) for area in listed_tests.untested]
    elif kind == "flaky":
        lines = [
            f"• :zap: `{escape(clip(test.display_name, 200))}`{_required(test)} recent runs `{test.recent or '-'}`"
            for test in listed_tests.tests
        ]
    else:
        lines = [_failing_fact_line(test) for test in listed_tests.tests]
    return _list_message(reading, listed_tests.title, lines, more=more, query=query)


def milestone_trend(reading: MilestoneReading, history: History, *, command: str, links: Links) -> Message:
    days = history.days
    query = Query("trend", reading.repository, reading.name)
    if not days:
        return _list_message(reading, f"{reading.name} · no history yet", [], more="", query=query)
    rates = [day.pass_rate for day in days]
    change = pass_rate_change(history)
    summary = [
        f"*Pass rate*{change} `{sparkline(rates)}`",
        f"*Blocking defects* from {days[0].open_blocking} to {days[-1].open_blocking} `{sparkline(day.open_blocking for day in days)}`",
        f"*Required tests failing* from {days[0].required_failing} to {days[-1].required_failing} `{sparkline(day.required_failing for day in days)}`",
        f"_{days[0].day:%d %b} to {days[-1].day:%d %b}, one mark per day_",
    ]
    lines = [
        f"• {slack_time(change.at)}: {STATUS_LABEL[change.before] if change.before else 'first reading'} → *{STATUS_LABEL[change.status]}*"
        for change in history.changes[-10:]
    ]
    regressions = reading.verdict.metrics.regressions
    lines += ["*Regressions* (passed before, failing now)" if regressions else "*Regressions* none"]
    lines += [failing_test_line(test) for test in regressions]
    blocks = [
        header(f"{reading.name} · trend"),
        section("\n".join(summary)),
        section("*Status changes*" if history.changes else "*Status changes* none in 30 days"),
    ]
    blocks += line_sections(
        lines,
        max_sections=LIST_SECTIONS - 2,
        max_lines=LIST_LINES,
        more=links.more("regressions", f"{command} tests {quoted(reading.name)} failing"),
    )
    blocks.append(share_actions(query))
    return Message(escape(trend_title(reading, history)), blocks)


def _list_message(reading: MilestoneReading, title: str, lines: list[str], *, more: str, query: Query) -> Message:
    blocks: list[Block] = [header(title)]
    blocks += (
        line_sections(lines, max_sections=LIST_SECTIONS, max_lines=LIST_LINES, more=more)
        if lines
        else [section("Nothing to list.")]
    )
    blocks.append(share_actions(query))
    return Message(escape(f"{title} ({reading.repository})"), blocks)


def share_actions(query: Query) -> Block:
    return actions(share_button(query), block_id="share")


def share_button(query: Query) -> Block:
    return button("Share to channel", SHARE_ACTION, value=query.encode())


# Lines -----------------------------------------------------------------------


def failing_test_line(test: FailingTest) -> str:
    since = _since(test.since)
    return f"• :x: `{escape(clip(test.name, 200))}` {test.status.value}{since}"


def _failing_fact_line(test: TestFact) -> str:
    first = first_line(test.message)
    message = f" · _{escape(clip(first, 120))}_" if first else ""
    status = test.latest.value if test.latest else "not run"
    return (
        f"• :x: `{escape(clip(test.display_name, 200))}`{_required(test)} {status}{_since(test.failing_since)}{message}"
    )


def _since(launch: LaunchRef | None) -> str:
    if launch is None:
        return ""
    commit = f" `{short_sha(launch.commit_sha)}`" if launch.commit_sha else ""
    when = f" {slack_time(launch.finished_at)}" if launch.finished_at else ""
    return f" since {link(launch.url, 'run')}{commit}{when}"


def _required(test: TestFact) -> str:
    return " *required*" if test.required else ""


def _untested_line(suite: str, names: list[str]) -> str:
    shown = listed([f"`{escape(clip(name, 120))}`" for name in names], UNTESTED_NAMES)
    label = "never reported" if suite == NEVER_REPORTED else (suite or "no suite")
    return f"• *{escape(label)}* ({plural(len(names), 'test')}): {shown}"


def defect_line(defect: DefectFact, *, blocking: bool) -> str:
    state = "" if defect.state is DefectState.OPEN else f" ({defect.state.value}, not verified)"
    flag = " · *blocking*" if blocking else ""
    title = link(defect.url, f"#{defect.number} {clip(defect.title, 150)}")
    return f"• {SEVERITY_EMOJI[defect.severity]} {title} {defect.severity.value}{state}{flag}"


def quoted(name: str) -> str:
    """The name as it would be typed after the command, for a command shown in the answer."""
    return escape(typed(name))


def slack_time(moment: datetime) -> str:
    """Shown in each reader's own time zone; the fallback is UTC."""
    fallback = f"{moment:%Y-%m-%d %H:%M} UTC"
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"
