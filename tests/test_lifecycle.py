"""Milestones over their life: start and target dates in the team's zone, the lifecycle beside
the gate status, the completion figure, tags, clones and roll-ups."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from core import outbox, services
from core.alerts import what_is_new
from core.enums import Decision, GateStatus, Lifecycle, MilestoneState
from core.gate import MilestoneFacts, TestFact, evaluate
from core.ingest import LaunchSource
from core.junit import parse_stream
from core.lifecycle import lifecycle_state, today_in
from core.models import Milestone, Outbox, Signoff, Snapshot
from core.policy import MilestonePolicy, ProgressWeights
from core.policy_file import load_policy
from core.services.milestones import KEEP

REPO = "acme/shop"
TODAY = datetime.now(UTC).date()

POLICY = f"""
plans:
  unit: {{}}
milestones:
  "Sprint 24":
    plans: [unit]
    tags: [sprint]
    signoff: {{approvers: [U1], quorum: 1}}
  "Sprint 25":
    plans: [unit]
    start: {TODAY + timedelta(days=10)}
    tags: [sprint]
    signoff: {{approvers: [U2], quorum: 1}}
  "v2.0":
    plans: [unit]
    includes: ["Sprint *"]
    tags: [release, q1]
  "Hotfix *":
    plans: [unit]
    pass_rate: 0.5
"""


# The pure parts ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "target", "completed", "closed", "expected"),
    [
        (None, None, False, False, Lifecycle.ACTIVE),
        (date(2026, 11, 2), None, False, False, Lifecycle.PLANNED),
        (date(2026, 11, 1), date(2026, 11, 30), False, False, Lifecycle.ACTIVE),
        (None, date(2026, 10, 31), False, False, Lifecycle.OVERDUE),
        (None, date(2026, 10, 31), True, False, Lifecycle.COMPLETED),
        (None, None, True, True, Lifecycle.COMPLETED),
        (date(2026, 12, 1), date(2026, 10, 31), False, True, Lifecycle.CLOSED),
    ],
)
def test_the_lifecycle_follows_the_dates_completion_and_closing(
    start: date | None, target: date | None, completed: bool, closed: bool, expected: Lifecycle
) -> None:
    today = date(2026, 11, 1)
    assert lifecycle_state(today=today, start=start, target=target, completed=completed, closed=closed) is expected


def test_a_team_in_utc_minus_8_is_not_overdue_at_4_pm_the_day_before() -> None:
    # 4 pm in Los Angeles on 24 November is already the 25th in UTC.
    now = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert today_in("America/Los_Angeles", now) == date(2026, 11, 24)
    facts = dict(name="v2.0", target_date=date(2026, 11, 24), tests=[TestFact(1, "a", "b", "s", False)])
    in_los_angeles = evaluate(MilestoneFacts(policy=MilestonePolicy(), zone="America/Los_Angeles", **facts), now)
    assert (in_los_angeles.overdue, in_los_angeles.days_left, in_los_angeles.lifecycle) == (False, 0, Lifecycle.ACTIVE)
    in_utc = evaluate(MilestoneFacts(policy=MilestonePolicy(), zone="UTC", **facts), now)
    assert (in_utc.overdue, in_utc.days_left, in_utc.lifecycle) == (True, -1, Lifecycle.OVERDUE)


def test_completion_is_the_weighted_mean_of_the_criteria_that_apply() -> None:
    from core.enums import TestStatus

    tests = [TestFact(index, "a", f"t{index}", "s", False, TestStatus.PASSED) for index in range(3)]
    tests.append(TestFact(9, "a", "t9", "s", False, None))
    # Tests: 3 of 4 pass; coverage: 3 of 4 run; no limited defects; sign-off: 0 of 1.
    equal = MilestoneFacts(name="v2.0", policy=MilestonePolicy(), tests=tests, approvers=["U1"])
    assert evaluate(equal, datetime.now(UTC)).completion == 50  # (0.75 + 0.75 + 0) / 3
    weights = ProgressWeights(tests=0.4, coverage=0.3, defects=0.3, signoff=0)
    weighted = MilestoneFacts(name="v2.0", policy=MilestonePolicy(progress=weights), tests=tests, approvers=["U1"])
    assert evaluate(weighted, datetime.now(UTC)).completion == 75
    assert evaluate(MilestoneFacts(name="v2.0", policy=MilestonePolicy()), datetime.now(UTC)).completion is None


def test_a_planned_milestone_raises_no_alerts() -> None:
    before = {"status": "at_risk", "green": True, "failing": [], "defects": {}, "due_soon": False, "overdue": False}
    red = {**before, "status": "blocked", "green": False, "failing": ["a.b"]}
    assert what_is_new(before, {**red, "planned": True}).turned_red is False
    assert what_is_new(before, {**red, "planned": False}).turned_red is True


def test_policy_check_refuses_a_roll_up_cycle_with_its_line() -> None:
    load = load_policy('milestones:\n  "v2.0":\n    includes: ["Sprint *"]\n  "Sprint 1":\n    includes: ["v2.0"]\n')
    assert [str(error) for error in load.errors] == [
        '.github/milestones.yml:3: milestones."v2.0".includes[0]: includes form a cycle: v2.0 -> Sprint 1 -> v2.0',
        '.github/milestones.yml:5: milestones."Sprint 1".includes[0]: includes form a cycle: Sprint 1 -> v2.0 -> Sprint 1',
    ]


# Against the database ------------------------------------------------------------


def report(*outcomes: str):
    cases = "".join(
        f'<testcase classname="shop" name="t{index}">{"<failure/>" if outcome == "failed" else ""}</testcase>'
        for index, outcome in enumerate(outcomes)
    )
    return parse_stream(io.BytesIO(f'<testsuite name="s">{cases}</testsuite>'.encode()), "report.xml")


async def launch(source: str, *outcomes: str) -> None:
    await services.record_launch(report(*outcomes), LaunchSource(REPO, "unit", source, commit_sha=f"sha-{source}"))


def issue(number: int, labels: list[str], *, state: str = "open", at: datetime | None = None):
    return services.IssueFacts(
        number=number,
        title=f"issue {number}",
        labels=labels,
        state=state,
        state_reason=None,
        milestone_title="Sprint 24",
        updated_at=at or datetime.now(UTC),
        url=f"https://github.com/{REPO}/issues/{number}",
    )


async def setup() -> None:
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok, load.errors
    await services.save_milestone(REPO, "Sprint 24", target_date=TODAY + timedelta(days=5))


async def test_the_list_shows_active_and_overdue_first_then_planned_and_the_rest_with_all(db: str) -> None:
    await setup()
    await services.save_milestone(REPO, "Sprint 23", target_date=TODAY - timedelta(days=2))
    await services.save_milestone(REPO, "Sprint 22", state=MilestoneState.CLOSED)
    summaries = await services.list_milestones([REPO])
    assert [(s.name, s.lifecycle) for s in summaries] == [
        ("Sprint 23", Lifecycle.OVERDUE),
        ("Sprint 24", Lifecycle.ACTIVE),
        ("v2.0", Lifecycle.ACTIVE),
        ("Sprint 25", Lifecycle.PLANNED),
    ]
    everything = await services.list_milestones([REPO], include_all=True)
    assert [(s.name, s.lifecycle) for s in everything][-1] == ("Sprint 22", Lifecycle.CLOSED)
    assert (await Milestone.get(name="Sprint 22")).lifecycle is Lifecycle.CLOSED
    planned = next(s for s in summaries if s.name == "Sprint 25")
    assert planned.start_date == TODAY + timedelta(days=10)


async def test_a_start_date_set_from_the_cli_makes_a_milestone_planned(db: str) -> None:
    await setup()
    _, change = await services.save_milestone(REPO, "Sprint 24", start_date=TODAY + timedelta(days=1))
    assert change.verdict.lifecycle is Lifecycle.PLANNED
    _, change = await services.save_milestone(REPO, "Sprint 24", start_date=None, target_date=KEEP)
    assert change.verdict.lifecycle is Lifecycle.ACTIVE


async def test_completion_moves_as_launches_defects_and_approvals_arrive_and_is_kept_in_snapshots(db: str) -> None:
    await setup()
    sprint = await Milestone.get(name="Sprint 24")
    await launch("r1", "passed", "failed", "failed", "passed")
    # Tests 2 of 4, coverage 4 of 4, no limited defects, sign-off 0 of 1: (0.5 + 1 + 0) / 3.
    assert (await services.get_verdict(REPO, "Sprint 24")).completion == 50
    await services.upsert_defect(REPO, issue(7, ["bug", "P0"]))
    # Defects 0 of 1 resolved: (0.5 + 1 + 0 + 0) / 4.
    assert (await services.get_verdict(REPO, "Sprint 24")).completion == 37
    await services.upsert_defect(REPO, issue(7, ["bug", "P0"], state="closed"))
    await launch("r2", "passed", "passed", "passed", "passed")
    assert (await services.get_verdict(REPO, "Sprint 24")).completion == 75
    await services.record_decision(REPO, "Sprint 24", "U1", Decision.APPROVE)
    verdict = await services.get_verdict(REPO, "Sprint 24")
    assert (verdict.completion, verdict.lifecycle) == (100, Lifecycle.COMPLETED)
    history = [snapshot.metrics["completion"] for snapshot in await Snapshot.filter(milestone=sprint).order_by("id")]
    # The defect closed (62) before the second launch came.
    assert history[-5:] == [50, 37, 62, 75, 100]


async def test_tags_come_from_the_policy_and_the_cli_and_filter_the_list(db: str) -> None:
    await setup()
    await services.save_milestone(REPO, "Sprint 24", tags=["team-a"])
    assert [s.name for s in await services.list_milestones([REPO], tag="release")] == ["v2.0"]
    assert [s.name for s in await services.list_milestones([REPO], tag="SPRINT")] == ["Sprint 24", "Sprint 25"]
    [tagged] = await services.list_milestones([REPO], tag="team-a")
    assert tagged.tags == ["sprint", "team-a"]


async def test_a_child_turning_red_turns_the_parent_red_and_owes_its_checks_and_alerts(db: str) -> None:
    await setup()
    await launch("r1", "passed", "passed")
    parent = await services.get_verdict(REPO, "v2.0")
    includes = parent.criteria.includes
    assert includes is not None
    assert [(child.name, child.lifecycle) for child in includes.numbers.milestones] == [
        ("Sprint 24", Lifecycle.ACTIVE),
        ("Sprint 25", Lifecycle.PLANNED),
    ]
    assert includes.summary == "0 of 2 included milestones complete"
    assert parent.status is GateStatus.AT_RISK
    release = await Milestone.get(name="v2.0")
    await Outbox.filter(topic=outbox.MILESTONE_ALERTS).delete()

    await launch("r2", "passed", "failed")

    assert (await services.get_verdict(REPO, "Sprint 24")).status is GateStatus.BLOCKED
    assert (await services.get_verdict(REPO, "v2.0")).status is GateStatus.BLOCKED
    latest = await Snapshot.filter(milestone=release).order_by("-id").first()
    assert latest is not None and latest.status is GateStatus.BLOCKED
    assert await Outbox.filter(topic=outbox.MILESTONE_ALERTS, subject=release.id).exists()


async def test_a_child_whose_date_passed_shows_its_lifecycle_as_of_today_in_the_parent(db: str) -> None:
    await setup()
    await launch("r1", "passed", "passed")
    # The target date passes with nothing else happening to the child: its stored lifecycle
    # still says active.
    await Milestone.filter(name="Sprint 24").update(target_date=TODAY - timedelta(days=1))
    assert (await Milestone.get(name="Sprint 24")).lifecycle is Lifecycle.ACTIVE
    includes = (await services.get_verdict(REPO, "v2.0")).criteria.includes
    assert includes is not None
    assert [(child.name, child.lifecycle) for child in includes.numbers.milestones] == [
        ("Sprint 24", Lifecycle.OVERDUE),
        ("Sprint 25", Lifecycle.PLANNED),
    ]


async def test_a_closed_child_counts_only_with_allow_closed(db: str) -> None:
    text = POLICY.replace('includes: ["Sprint *"]', 'includes: ["Sprint 24"]')
    load, _ = await services.apply_policy_file(REPO, text)
    assert load.ok
    await launch("r1", "passed", "passed")
    await services.save_milestone(REPO, "Sprint 24", state=MilestoneState.CLOSED)
    includes = (await services.get_verdict(REPO, "v2.0")).criteria.includes
    assert includes is not None and not includes.met
    await services.apply_policy_file(
        REPO, text.replace('includes: ["Sprint 24"]', 'includes: ["Sprint 24"]\n    allow_closed: true')
    )
    includes = (await services.get_verdict(REPO, "v2.0")).criteria.includes
    assert includes is not None and includes.met


async def test_a_clone_carries_the_gate_but_not_the_history(db: str) -> None:
    await setup()
    await services.save_milestone(REPO, "Sprint 24", tags=["team-a"])
    await launch("r1", "passed", "passed")
    await services.record_decision(REPO, "Sprint 24", "U1", Decision.APPROVE)
    clone = await services.clone_milestone(REPO, "Sprint 24", "Patch 1", target_date=TODAY + timedelta(days=20))
    assert clone.policy_entry is None and not clone.github
    copy = await Milestone.get(name="Patch 1")
    source = await Milestone.get(name="Sprint 24")
    assert copy.policy == source.policy
    assert copy.tags == ["team-a"]
    assert copy.target_date == TODAY + timedelta(days=20)
    assert await Signoff.filter(milestone=copy).count() == 0
    verdict = await services.get_verdict(REPO, "Patch 1")
    assert verdict.criteria.signoff.numbers.approvers == ["U1"]
    assert verdict.criteria.signoff.numbers.approvals == 0
    # The same plan's results count for it (the plan is shared), but no sign-off or defect is copied.
    assert verdict.criteria.tests.numbers.executed == 2
    # The repository's policy applied again keeps the copy as the clone's gate.
    await services.apply_policy_file(REPO, POLICY + "\n")
    assert (await Milestone.get(name="Patch 1")).policy == source.policy


async def test_a_policy_glob_that_matches_the_clone_wins_and_the_answer_says_so(db: str) -> None:
    await setup()
    clone = await services.clone_milestone(REPO, "Sprint 24", "Hotfix 2")
    assert clone.policy_entry == "Hotfix *"
    assert (await services.get_verdict(REPO, "Hotfix 2")).criteria.tests.numbers.pass_rate_threshold == 0.5
    with pytest.raises(ValueError, match="already exists"):
        await services.clone_milestone(REPO, "Sprint 24", "Hotfix 2")


def test_defects_count_towards_completion_when_resolved_since_the_start() -> None:
    from core.enums import DefectState, Severity
    from core.gate import DefectFact

    defects = [
        DefectFact(1, "old", Severity.HIGH, DefectState.RESOLVED),
        DefectFact(2, "fixed", Severity.HIGH, DefectState.RESOLVED),
        DefectFact(3, "open", Severity.HIGH, DefectState.OPEN),
        DefectFact(4, "not limited", Severity.LOW, DefectState.OPEN),
    ]
    weights = ProgressWeights(tests=0, coverage=0, defects=1, signoff=0)
    facts = MilestoneFacts(
        name="v2.0", policy=MilestonePolicy(progress=weights), defects=defects, resolved_before_start=frozenset({1})
    )
    verdict = evaluate(facts, datetime.now(UTC))
    assert (verdict.criteria.defects.numbers.resolved, verdict.criteria.defects.numbers.unresolved) == (1, 1)
    assert verdict.completion == 50


# From the terminal -----------------------------------------------------------------


def test_the_cli_lists_plans_tags_and_clones_milestones(migrated_database_url: str, tmp_path) -> None:
    from tests.cli import assert_refused_quietly, json_of, run, succeeds

    url = migrated_database_url
    policy = tmp_path / "milestones.yml"
    policy.write_text(POLICY)
    later = (TODAY + timedelta(days=3)).isoformat()
    succeeds("milestone", "add", "Sprint 24", "--repo", REPO, "--policy", policy, database_url=url, cwd=tmp_path)
    added = succeeds(
        "milestone",
        "add",
        "Sprint 26",
        "--repo",
        REPO,
        "--start",
        later,
        "--tag",
        "team-a",
        "--tag",
        "sprint",
        database_url=url,
        cwd=tmp_path,
    )
    assert added == f"milestone Sprint 26 in {REPO}: planned, no data\n"

    lines = succeeds("list", "--repo", REPO, database_url=url, cwd=tmp_path).splitlines()
    # An aligned table: columns apart by two spaces or more.
    rows = [re.split(r"\s{2,}", line) for line in lines]
    assert rows[0] == [
        "REPOSITORY",
        "MILESTONE",
        "LIFECYCLE",
        "STATUS",
        "COMPLETION",
        "DUE",
        "PASS RATE",
        "BLOCKING",
        "TAGS",
    ]
    assert [row[1] for row in rows[1:]] == ["Sprint 24", "v2.0", "Sprint 26", "Sprint 25"]
    # No results yet; its one approver has not approved.
    assert rows[1] == [REPO, "Sprint 24", "active", "no data", "░░░░░░░░░░ 0%", "no date", "n/a", "0", "sprint"]
    assert rows[3][:5] == [REPO, "Sprint 26", f"planned, starts {later}", "no data", "completion n/a"]
    assert rows[3][-1] == "team-a, sprint"

    tagged = json_of("list", "--tag", "team-a", database_url=url, cwd=tmp_path)
    assert [(m["name"], m["lifecycle"], m["tags"], m["start_date"]) for m in tagged] == [
        ("Sprint 26", "planned", ["team-a", "sprint"], later)
    ]
    assert succeeds("list", "--tag", "nothing", database_url=url, cwd=tmp_path) == (
        "no milestones tagged nothing (--all shows completed and closed ones)\n"
    )

    cloned = succeeds("milestone", "clone", "Sprint 24", "Sprint 27", "--due", later, database_url=url, cwd=tmp_path)
    assert cloned == (
        "milestone Sprint 27 cloned from Sprint 24; same plans, branches, required tests, thresholds, "
        "defect limits, approvers and tags\n"
    )
    hotfix = succeeds("milestone", "clone", "Sprint 24", "Hotfix 1", database_url=url, cwd=tmp_path)
    assert hotfix == (
        "milestone Hotfix 1 cloned from Sprint 24; the policy entry 'Hotfix *' already matches Hotfix 1 "
        "and wins over the copy\n"
    )
    status = json_of("status", "Sprint 27", database_url=url, cwd=tmp_path)
    assert (status["lifecycle"], status["target_date"], status["tags"]) == ("active", later, ["sprint"])
    assert status["signoffs"] == []
    assert assert_refused_quietly(
        run("milestone", "clone", "Sprint 24", "Sprint 27", database_url=url, cwd=tmp_path), 1
    ) == [f"error: milestone Sprint 27 already exists in {REPO}; choose another name"]
    assert assert_refused_quietly(run("list", "--tag", "two words", database_url=url, cwd=tmp_path), 2)[-1] == (
        "milestones list: error: argument --tag: 'two words': a tag is one word of letters, digits, '.', '_' or '-' "
        "(at most 40)"
    )


def test_policy_check_names_the_line_of_a_roll_up_cycle(migrated_database_url: str, tmp_path) -> None:
    from tests.cli import assert_refused_quietly, run

    policy = tmp_path / "milestones.yml"
    policy.write_text('milestones:\n  "v2.0":\n    includes: ["Sprint *"]\n  "Sprint 1":\n    includes: ["v2.0"]\n')
    errors = assert_refused_quietly(run("policy", "check", policy, database_url=migrated_database_url, cwd=tmp_path), 1)
    assert errors[0] == f'{policy}:3: milestones."v2.0".includes[0]: includes form a cycle: v2.0 -> Sprint 1 -> v2.0'
