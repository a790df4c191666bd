"""Block Kit views as pure functions: content, and Slack's limits on very large milestones."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from functools import cache

import pytest

from bot.command_line import Query
from bot.views.blocks import POSTED_BLOCK_TEXT, Message, line_sections, sparkline
from bot.views.digests import alert_message
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
from bot.views.replies import help_message
from core.alerts import Alert
from core.enums import Decision, DefectState, GateStatus, Lifecycle, MilestoneState, Severity, TestStatus
from core.gate import (
    DecisionFact,
    DefectFact,
    LaunchRef,
    LinkFact,
    MilestoneFacts,
    PassingCounts,
    QuarantineFact,
    TestFact,
    evaluate,
)
from core.history import History, SnapshotRow, StatusChange, daily
from core.metrics import TrendPoint
from core.policy import MilestonePolicy
from core.readings import MilestoneReading, MilestoneSummary
from core.wording import progress_bar
from tests.block_kit import assert_within_limits, block_text

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PAGE = "https://gate.example.com/milestones/acme/shop/v2.0?key=abc"
COMMAND = "/milestone"
SEVERITIES = list(Severity)
# User text that must not become a mention, a link or formatting in Slack.
HOSTILE = "<!channel> & <https://evil.example|click> *bold*"


def reading(facts: MilestoneFacts, *, description: str = "") -> MilestoneReading:
    return MilestoneReading("acme/shop", facts.name, description, facts, evaluate(facts, NOW), 1)


def huge() -> MilestoneReading:
    """5,000 failing tests, 300 defects, 2,000 tests not run, flaky ones, two months of trend."""
    launch = LaunchRef(7, "0123456789abcdef", "https://github.com/acme/shop/actions/runs/7", NOW - timedelta(days=2))
    tests = [
        TestFact(
            index,
            f"com.acme.checkout.very.long.package.name.Suite{index % 40}",
            f"test_case_{index}_{'x' * 60}",
            f"suite-{index % 40}",
            required=index % 3 == 0,
            latest=TestStatus.FAILED if index % 7 else TestStatus.ERROR,
            previous=TestStatus.PASSED,
            failing_since=launch,
            message=f"AssertionError: {HOSTILE}\n  at line {index}",
            cause=f"AssertionError {index % 60}: {HOSTILE} {'z' * 300}",
        )
        for index in range(5000)
    ]
    tests += [
        TestFact(10_000 + index, "com.acme.Untested", f"t{index}", f"area-{index % 50}", required=True)
        for index in range(2000)
    ]
    tests += [
        TestFact(
            20_000 + index,
            "com.acme.Flaky",
            f"f{index}",
            "flaky",
            required=False,
            latest=TestStatus.PASSED,
            flaky=True,
            recent="PFPFPF",
        )
        for index in range(400)
    ]
    defects = [
        DefectFact(
            number,
            f"Defect {number} {HOSTILE} {'y' * 200}",
            SEVERITIES[number % 5],
            DefectState.OPEN,
            f"https://github.com/acme/shop/issues/{number}",
        )
        for number in range(1, 301)
    ]
    trend = [TrendPoint(NOW - timedelta(days=60 - day), 0.5 + day / 200, 300 - day) for day in range(60)]
    facts = MilestoneFacts(
        name="v2.0",
        policy=MilestonePolicy.model_validate(
            {"required": ["plan:smoke"], "signoff": {"approvers": [f"U{n:03}" for n in range(30)]}}
        ),
        target_date=date(2026, 11, 20),
        tests=tests,
        passing=PassingCounts(total=50_000, required=5_000),
        defects=defects,
        approvers=[f"U{n:03}" for n in range(30)],
        decisions=[DecisionFact("U001", Decision.REJECT, NOW, HOSTILE * 50)],
        trend=trend,
        quarantine=[
            QuarantineFact(20_000 + index, f"com.acme.Flaky.f{index}", "slack", HOSTILE * 20, "U001", NOW)
            for index in range(400)
        ],
        links=[LinkFact(number, number * 10, f"t{number}", TestStatus.PASSED, NOW) for number in range(1, 301)],
        linked_defects=[defect._replace(state=DefectState.RESOLVED) for defect in defects],
        resolved_at={number: NOW - timedelta(days=1) for number in range(1, 301)},
    )
    return reading(facts, description="Release " + HOSTILE * 100)


def small(**fields) -> MilestoneReading:
    fields.setdefault("policy", MilestonePolicy.model_validate({}))
    return reading(MilestoneFacts(name="v2.0", **fields))


def texts(message: Message) -> str:
    """Every piece of text in the message, for asserting what a reader sees."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text"):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.blocks)
    return "\n".join(found)


@cache
def huge_messages() -> dict[str, Message]:
    big = huge()
    links = Links(PAGE)
    history = History(
        daily(
            [
                SnapshotRow(
                    NOW - timedelta(days=40 - day),
                    GateStatus.BLOCKED,
                    {"pass_rate": day / 40, "open_blocking": 40 - day},
                )
                for day in range(40)
            ],
            NOW.date() - timedelta(days=29),
            NOW.date(),
        ),
        [
            StatusChange(
                NOW - timedelta(hours=hour), GateStatus.BLOCKED if hour % 2 else GateStatus.AT_RISK, GateStatus.AT_RISK
            )
            for hour in range(200, 0, -1)
        ],
    )
    return {
        "status": status_card(big, command=COMMAND, links=links, now=NOW),
        "defects": milestone_defects(big, None, command=COMMAND, links=links),
        "tests failing": milestone_tests(big, "failing", command=COMMAND, links=links),
        "tests untested": milestone_tests(big, "untested", command=COMMAND, links=links),
        "tests flaky": milestone_tests(big, "flaky", command=COMMAND, links=links),
        "trend": milestone_trend(big, history, command=COMMAND, links=links),
        "list": milestone_list(
            [summary(f"m{n}", GateStatus.BLOCKED) for n in range(2000)], scope=None, command=COMMAND, today=NOW.date()
        ),
        "help": help_message(COMMAND),
        "tests quarantined": milestone_tests(big, "quarantined", command=COMMAND, links=links),
        "quarantine": quarantine_list(big, command=COMMAND),
        "alert": alert_message(
            big,
            Alert(
                quarantined={f"com.acme.Flaky.f{n} {'q' * 150}": HOSTILE * 20 for n in range(600)},
                released=[f"com.acme.Flaky.g{n} {'r' * 150}" for n in range(600)],
                ready_to_verify=list(range(1, 301)),
            ),
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "status",
        "defects",
        "tests failing",
        "tests untested",
        "tests flaky",
        "trend",
        "list",
        "help",
        "tests quarantined",
        "quarantine",
        "alert",
    ],
)
def test_every_message_of_a_huge_milestone_stays_within_block_kit_limits(name: str) -> None:
    message = huge_messages()[name]
    assert_within_limits(message.payload(), "message")
    assert_within_limits(message.in_channel().payload(), "message")
    assert message.text and len(message.text) < 4000
    assert "<!channel>" not in texts(message) and "<https://evil" not in texts(message)
    if name == "alert":  # posted with chat.postMessage, unlike answers
        assert len(texts(message)) < 11_000


def posted_messages() -> dict[str, Message]:
    """Every kind of message the app posts with chat.postMessage or chat.update, as large as it gets."""
    from bot.views.digests import alert_message, digest_message
    from bot.views.signoff import request_message
    from core.alerts import Alert
    from core.digests import Changes

    big = huge()
    approvers = [f"U{n:04}" for n in range(1000)]
    trail = [entry(user, Decision.REJECT, HOSTILE * 40) for user in approvers[:30]]
    state = signoff_state(approvers, trail, groups=("@gone",))
    changed = Changes(first=False, pass_rate_delta=-0.1, new_failing=["x" * 900 + str(n) for n in range(50)])
    return {
        **{f"shared {name}": message.in_channel() for name, message in huge_messages().items()},
        "digest of 1,000 milestones": digest_message([(big, changed)] * 1000, scope="acme/shop", now=NOW),
        "quiet digest of 1,000 milestones": digest_message(
            [(big, Changes(first=False))] * 1000, scope="acme/shop", now=NOW
        ),
        "sign-off request": request_message(state, requested_by="U0EVE", requested_at=NOW, command=COMMAND),
        "alert": alert_message(
            big, Alert(turned_red=True, regressions=["y" * 2000 + str(n) for n in range(300)], overdue=True)
        ),
    }


def test_every_posted_message_stays_under_11000_characters_of_block_text() -> None:
    for name, message in posted_messages().items():
        posted = message.posted(rest=f"see <{PAGE}|the milestone page>")
        assert block_text(posted["blocks"]) <= POSTED_BLOCK_TEXT, name
        assert len(posted["text"]) <= 1000, name
        assert_within_limits(posted, "message")
        if block_text(message.blocks) > POSTED_BLOCK_TEXT:
            assert f"more lines: see <{PAGE}|the milestone page>" in texts(Message("", posted["blocks"])), name
        # Buttons survive the cut.
        assert [b for b in posted["blocks"] if b["type"] == "actions"] == [
            b for b in message.blocks if b["type"] == "actions"
        ], name
    digest = posted_messages()["digest of 1,000 milestones"]
    assert block_text(digest.blocks) > 12_000, "the case is one Slack would refuse"


def test_what_does_not_fit_is_counted_in_lines() -> None:
    from bot.views.blocks import actions, button, header, section, within_text_budget

    lines = [f"line {n:03} " + "x" * 90 for n in range(300)]
    blocks = [header("Title"), section("\n".join(lines[:25])), *[section(line) for line in lines[25:]]]
    blocks = blocks[:49] + [actions(button("Go", "go"))]
    kept = within_text_budget(blocks, 3000, rest="`/milestone list`")
    shown = texts(Message("", kept))
    count = sum(f"line {n:03} " in shown for n in range(300))
    hidden = sum(len(block["text"]["text"].splitlines()) for block in blocks if block["type"] == "section") - count
    assert f"…and {hidden:,} more lines: `/milestone list`" in shown
    assert block_text(kept) <= 3000 and kept[0]["type"] == "header" and kept[-1]["type"] == "actions"
    assert kept[-2]["type"] == "context"  # the note where the cut is


def test_cut_lists_end_with_how_many_more_and_the_page_link() -> None:
    messages = huge_messages()
    failing = texts(messages["tests failing"])
    shown = failing.count("• :x:")
    assert shown == 60
    assert f"…and {5000 - shown:,} more failing tests: see <{PAGE}|the milestone page>" in failing
    defects = texts(messages["defects"])
    assert f"…and {300 - defects.count('• :'):,} more defects" in defects
    # Without PUBLIC_URL the command that lists them stands in for the link.
    plain = texts(milestone_tests(huge(), "failing", command=COMMAND, links=Links(None)))
    assert "more failing tests: see `/milestone tests v2.0 failing`" in plain


def test_status_card_shows_criteria_blockers_signoff_forecast_and_buttons() -> None:
    message = huge_messages()["status"]
    text = texts(message)
    assert message.text.startswith("v2.0 (acme/shop): Blocked, overdue by 4 days: ")
    assert ":x: *Required tests pass* `" in text and ":x: *Coverage met* `" in text
    assert "*What blocks*" in text
    assert text.count("• :x:") == 5 and "…and 1,662 more required tests failing: `/milestone tests v2.0`" in text
    assert "<https://github.com/acme/shop/issues/5|#5 Defect 5 &lt;!channel&gt; &amp;" in text
    assert "since <https://github.com/acme/shop/actions/runs/7|run> `0123456`" in text
    assert ":no_entry: rejected by <@U001>" in text
    assert "waiting for <@U000>, <@U002>" in text
    assert "*Forecast*" in text and "*Trend* pass rate `" in text
    [buttons] = [block["elements"] for block in message.blocks if block["type"] == "actions"]
    assert [(button["action_id"], button.get("url")) for button in buttons] == [
        ("refresh", None),
        ("open_page", PAGE),
        ("share", None),
    ]
    assert Query.decode(buttons[0]["value"]) == Query("status", "acme/shop", "v2.0")
    shared = message.in_channel()
    assert shared.response_type == "in_channel"
    assert [
        button["action_id"] for block in shared.blocks if block["type"] == "actions" for button in block["elements"]
    ] == ["refresh", "open_page"]


def test_status_card_of_a_green_milestone_without_public_url() -> None:
    facts_reading = small(
        tests=[TestFact(1, "a", "b", "s", required=True, latest=TestStatus.PASSED, previous=TestStatus.FAILED)],
        target_date=NOW.date() + timedelta(days=1),
    )
    message = status_card(facts_reading, command=COMMAND, links=Links(None), now=NOW)
    text = texts(message)
    assert message.text == "v2.0 (acme/shop): Complete"
    assert ":white_check_mark: *Complete* · _Completed_ · `██████████ 100%` · due Wed 25 Nov 2026 (tomorrow)" in text
    assert "*What blocks*" not in text and "*Sign-off* not required for this milestone" in text
    assert "open_page" not in str(message.blocks)


def summary(
    name: str,
    status: GateStatus,
    *,
    repository: str = "acme/shop",
    days_left: int | None = 5,
    pass_rate: float | None = 0.9,
    blocking: int = 0,
    completion: int | None = None,
    tags: tuple[str, ...] = (),
    start_date: date | None = None,
) -> MilestoneSummary:
    target = NOW.date() + timedelta(days=days_left) if days_left is not None else None
    overdue = days_left is not None and days_left < 0 and status is not GateStatus.COMPLETE
    lifecycle = Lifecycle.PLANNED if start_date else Lifecycle.OVERDUE if overdue else Lifecycle.ACTIVE
    return MilestoneSummary(
        repository,
        name,
        status,
        overdue,
        target,
        days_left,
        MilestoneState.OPEN,
        pass_rate,
        blocking,
        lifecycle=lifecycle,
        start_date=start_date,
        completion=completion,
        tags=list(tags),
    )


def test_list_lines_carry_emoji_due_date_pass_rate_and_blocking_defects() -> None:
    summaries = [
        summary("v1.9", GateStatus.AT_RISK, days_left=-3, blocking=2, repository="acme/api", completion=62),
        summary("v2.0", GateStatus.BLOCKED, days_left=10, pass_rate=0.875, completion=40, tags=("release", "q1")),
        summary("Sprint 24", GateStatus.NO_DATA, days_left=None, pass_rate=None, start_date=NOW.date() + timedelta(2)),
    ]
    message = milestone_list(summaries, scope=None, command=COMMAND, today=NOW.date())
    lines = texts(message).splitlines()
    assert (
        lines[1]
        == ":large_yellow_circle: *v1.9* `acme/api` At risk · _Overdue_ · `██████░░░░ 62%` · :alarm_clock: *overdue by 3 days* (due Sat 21 Nov 2026) · pass rate 90% · 2 blocking defects"
    )
    assert lines[2] == (
        ":red_circle: *v2.0* `acme/shop` Blocked · _Active_ · `████░░░░░░ 40%` · due Fri 4 Dec 2026 (in 10 days)"
        " · pass rate 87.5% · `release` `q1`"
    )
    assert lines[3] == (
        ":white_circle: *Sprint 24* `acme/shop` No data · _Planned_ · `completion n/a` · starts Thu 26 Nov 2026"
        " · no target date"
    )
    assert message.text == "3 open milestones; most urgent: v1.9 (At risk)"
    one_repository = milestone_list(summaries[1:], scope="acme/shop", command=COMMAND, today=NOW.date())
    assert "`acme/shop`" not in texts(one_repository).splitlines()[1]


def test_defects_filtered_by_severity_blocking_first() -> None:
    facts_reading = small(
        defects=[
            DefectFact(5, "low one", Severity.LOW, DefectState.OPEN),
            DefectFact(9, "high one", Severity.HIGH, DefectState.OPEN, "https://github.com/acme/shop/issues/9"),
            DefectFact(3, "high resolved", Severity.HIGH, DefectState.RESOLVED),
            DefectFact(4, "verified", Severity.CRITICAL, DefectState.VERIFIED),
        ]
    )
    lines = texts(milestone_defects(facts_reading, None, command=COMMAND, links=Links(None))).splitlines()
    assert lines[0] == "v2.0 · 3 defects not yet verified, 1 blocking"
    assert lines[1] == "• :large_orange_circle: <https://github.com/acme/shop/issues/9|#9 high one> high · *blocking*"
    assert lines[2] == "• :large_orange_circle: #3 high resolved high (resolved, not verified)"
    assert lines[3] == "• :white_circle: #5 low one low"
    only_low = texts(milestone_defects(facts_reading, "low", command=COMMAND, links=Links(None)))
    assert "#5 low one" in only_low and "#9" not in only_low


def test_tests_lists_failing_required_first_untested_by_area_and_flaky() -> None:
    tests = [
        TestFact(1, "a.A", "optional", "a", required=False, latest=TestStatus.FAILED, message="boom\nstack"),
        TestFact(2, "a.A", "needed", "a", required=True, latest=TestStatus.ERROR),
        TestFact(3, "b.B", "never", "b", required=True),
        TestFact(4, "c.C", "flips", "c", required=False, latest=TestStatus.PASSED, recent="PFPFP"),
    ]
    facts_reading = small(tests=tests)
    failing = texts(milestone_tests(facts_reading, None, command=COMMAND, links=Links(None))).splitlines()
    assert failing[0] == "v2.0 · 2 failing tests, 1 of them required, 2 causes"
    assert failing[1:5] == [
        "*By cause*, biggest first",
        "• *1 test:* `boom`",
        "• *1 test:* `no failure message`",
        "*Tests*, untriaged ones first",
    ]
    assert failing[5:7] == ["• :x: `a.A.needed` *required* error", "• :x: `a.A.optional` failed · _boom_"]
    untested = texts(milestone_tests(facts_reading, "untested", command=COMMAND, links=Links(None))).splitlines()
    assert untested[:2] == ["v2.0 · 1 test not run yet", "• *b* (1 test): `b.B.never`"]
    flaky = texts(milestone_tests(facts_reading, "flaky", command=COMMAND, links=Links(None))).splitlines()
    assert flaky[:2] == ["v2.0 · 1 flaky test", "• :zap: `c.C.flips` recent runs `PFPFP`"]


def test_trend_from_daily_snapshots_and_status_changes() -> None:
    rows = [
        SnapshotRow(
            NOW - timedelta(days=3, hours=5),
            GateStatus.AT_RISK,
            {"pass_rate": 0.8, "open_blocking": 3, "required_failing": 2},
        ),
        SnapshotRow(
            NOW - timedelta(days=3, hours=1),
            GateStatus.BLOCKED,
            {"pass_rate": 0.7, "open_blocking": 4, "required_failing": 5},
        ),
        SnapshotRow(
            NOW - timedelta(days=1),
            GateStatus.READY_FOR_SIGNOFF,
            {"pass_rate": 1.0, "open_blocking": 0, "required_failing": 0},
        ),
    ]
    days = daily(rows, NOW.date() - timedelta(days=4), NOW.date())
    # Nothing before the first snapshot; the last of each day; carried over quiet days.
    assert [(point.day.day, point.pass_rate, point.open_blocking) for point in days] == [
        (21, 0.7, 4),
        (22, 0.7, 4),
        (23, 1.0, 0),
        (24, 1.0, 0),
    ]
    history = History(
        days,
        [
            StatusChange(rows[0].taken_at, GateStatus.AT_RISK, None),
            StatusChange(rows[2].taken_at, GateStatus.READY_FOR_SIGNOFF, GateStatus.BLOCKED),
        ],
    )
    text = texts(milestone_trend(small(), history, command=COMMAND, links=Links(None)))
    assert "*Pass rate* from 70% to 100% `▁▁██`" in text
    assert "*Blocking defects* from 4 to 0 `██▁▁`" in text
    assert "first reading → *At risk*" in text and "Blocked → *Ready for sign-off*" in text
    assert "*Regressions* none" in text


def test_home_tab_within_100_blocks_with_awaiting_first() -> None:
    milestones = [summary(f"m{n}", GateStatus.BLOCKED, repository=f"acme/r{n % 60}") for n in range(3000)]
    awaiting = [summary("v2.0", GateStatus.READY_FOR_SIGNOFF)]
    view = home_view(milestones, awaiting, linked=True, command=COMMAND, today=NOW.date(), now=NOW)
    assert_within_limits(view, "home")
    text = texts(Message("", view["blocks"]))
    assert text.index("*Awaiting your sign-off*") < text.index("*acme/r0*")
    assert "more repositories: `/milestone list owner/repo`" in text
    empty = home_view([], [], linked=False, command=COMMAND, today=NOW.date(), now=NOW)
    assert "No open milestones yet" in texts(Message("", empty["blocks"]))
    assert "no channel is linked yet" in texts(Message("", empty["blocks"]))


def test_sparkline_progress_bar_and_packing() -> None:
    assert sparkline([0, 0.5, 1, None, 1]) == "▁▅█ █"
    assert sparkline([0.9, 0.9]) == "▄▄"
    assert sparkline([None]) == ""
    assert progress_bar(0.5) == "█████░░░░░" and progress_bar(None) == "░" * 10 and progress_bar(1.7) == "█" * 10
    blocks = line_sections(["x" * 1000] * 10, max_sections=2, more="…and {count} more")
    assert [len(block["text"]["text"]) for block in blocks[:2]] == [2001, 2001]
    assert blocks[2]["elements"][0]["text"] == "…and 6 more"


def test_names_from_github_and_policy_files_never_become_markup() -> None:
    facts = MilestoneFacts(
        name="<!here> v3",
        # The policy file refuses such an approver; a fact can still carry one (a group's member list).
        policy=MilestonePolicy.model_validate({"signoff": {"approvers": ["U0GOOD"]}}),
        approvers=["U0GOOD", "U1> <!channel"],
    )
    message = status_card(reading(facts), command=COMMAND, links=Links(None), now=NOW)
    # Plain text (the header) is never parsed for mentions; mrkdwn must be escaped.
    mrkdwn = texts(Message("", [block for block in message.blocks if block["type"] != "header"]))
    assert "<!here>" not in mrkdwn and "<!channel>" not in mrkdwn
    assert message.blocks[0]["text"] == {"type": "plain_text", "text": "<!here> v3 · acme/shop", "emoji": True}
    assert "waiting for <@U0GOOD>, U1&gt; &lt;!channel" in texts(message)
    assert message.text.startswith("&lt;!here&gt; v3 (acme/shop): ")


def test_many_rejections_and_approvers_keep_the_card_valid() -> None:
    approvers = [f"U{n:04}" for n in range(1000)]
    facts = MilestoneFacts(
        name="v2.0",
        policy=MilestonePolicy.model_validate({"signoff": {"approvers": approvers}}),
        approvers=approvers,
        decisions=[DecisionFact(user, Decision.REJECT, NOW, "<" * 200) for user in approvers[:15]],
    )
    message = status_card(reading(facts), command=COMMAND, links=Links(None), now=NOW)
    assert_within_limits(message.payload(), "message")
    text = texts(message)
    assert text.count(":no_entry: rejected by") == 5 and "…and 10 more rejections" in text
    assert "waiting for <@U0015>" in text and "and 975 more" in text
    assert len(message.payload()["text"]) <= 1000


# Sign-off -------------------------------------------------------------------------------


def signoff_state(
    approvers: list[str], trail: list, *, groups: tuple[str, ...] = (), completed: datetime | None = None
):
    from core.approvers import Approvers
    from core.readings import SignoffState

    facts = MilestoneFacts(
        name=HOSTILE,
        policy=MilestonePolicy.model_validate({"signoff": {"approvers": approvers[:3] or []}}),
        approvers=approvers,
        unresolved_approvers=groups,
        decisions=[
            DecisionFact(entry.user_id, entry.decision, entry.created_at, entry.comment)
            for entry in trail
            if entry.valid
        ],
    )
    return SignoffState(
        reading(facts),
        Approvers(tuple(approvers) + groups, "policy", tuple(approvers), groups),
        trail,
        completed,
        [{"user": user, "at": NOW.isoformat()} for user in approvers[:2]] if completed else [],
    )


def entry(user: str, decision: Decision, comment: str = "", *, valid: bool = True):
    from core.models import Signoff

    signoff = Signoff(id=1, user_id=user, decision=decision, comment=comment, valid=valid, created_at=NOW)
    signoff.ends_id = None  # set by the ORM once it is initialised; this test runs without it
    return signoff


def test_a_sign_off_request_with_a_thousand_approvers_and_long_rejections_stays_valid() -> None:
    from bot.views.signoff import approvers_message, request_message, trail_message

    approvers = [f"U{n:04}" for n in range(1000)]
    trail = [entry(user, Decision.REJECT, HOSTILE * 40) for user in approvers[:30]]
    trail += [entry(user, Decision.DISMISS, "gate turned red: " + HOSTILE, valid=False) for user in approvers[30:40]]
    state = signoff_state(approvers, trail, groups=("@gone",))
    message = request_message(state, requested_by="U0EVE", requested_at=NOW - timedelta(hours=1), command=COMMAND)
    assert_within_limits(message.payload(), "message")
    text = texts(message)
    # Plain text (the header) is never parsed for mentions; mrkdwn must be escaped.
    assert "<!channel>" not in mrkdwn_texts(message) and "&lt;!channel&gt;" in text
    assert re.search(r"…and 9\d\d more approvers", text) and ":grey_question: *@gone*: members not known" in text
    assert message.text.startswith("Sign-off of &lt;!channel&gt;") and "requested by <@U0EVE>:" in message.text
    labels = [
        element["text"]["text"]
        for block in message.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert labels == ["Approve", "Reject", "Withdraw my decision"]
    for other in (trail_message(state, command=COMMAND), approvers_message(state, command=COMMAND)):
        assert_within_limits(other.payload(), "message")
        assert "<!channel>" not in mrkdwn_texts(other)


def mrkdwn_texts(message: Message) -> str:
    return texts(Message("", [block for block in message.blocks if block["type"] != "header"]))


def test_a_complete_request_says_who_signed_it_off() -> None:
    from bot.views.signoff import completion_notice, request_message

    state = signoff_state(
        ["U0ANN", "U0BOB"], [entry("U0ANN", Decision.APPROVE), entry("U0BOB", Decision.APPROVE)], completed=NOW
    )
    text = texts(request_message(state, requested_by="U0EVE", requested_at=NOW, command=COMMAND))
    assert ":tada: *Complete* since <!date^" in text and "approved by <@U0ANN>, <@U0BOB>" in text
    notice = completion_notice(state, complete=True)
    assert texts(notice).endswith("is complete: all four criteria are met, signed off by <@U0ANN>, <@U0BOB>.")
