"""Check runs and commit statuses as pure functions of a verdict, within GitHub's limits."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from core.enums import Decision, DefectState, Severity
from core.gate import DefectFact, LaunchRef, evaluate
from core.policy import DEFAULT_SOURCE
from core.policy_file import load_policy
from integrations.github.check_output import (
    ANNOTATIONS_PER_REQUEST,
    FIELD_LIMIT,
    STATUS_DESCRIPTION_LIMIT,
    Section,
    config_check,
    config_status,
    fit_sections,
    gate_check,
    gate_status,
    gate_title,
    left_milestone_check,
)
from tests.test_gate import GREEN, NOW, TODAY, E, F, P, decision, defect, fact, facts, policy

PAGE = "https://milestones.example.com/milestones/acme/shop/v2.0?key=k"
REPO_URL = "https://github.com/acme/shop"
STRICT = policy(
    required=["suite.A.*"],
    max_open_defects={"critical": 0, "high": 0},
    signoff={"approvers": ["U1", "U2"], "quorum": 2},
)
SINCE = LaunchRef(
    id=3, commit_sha="0123456789abcdef", url="https://github.com/acme/shop/actions/runs/77", finished_at=NOW
)


def verdict(**fields):
    fields.setdefault("policy", STRICT)
    fields.setdefault("approvers", fields["policy"].signoff.approvers)
    return evaluate(facts(**fields), NOW)


def blocked():
    return verdict(
        tests=[
            fact("pays", F, required=True, failing_since=SINCE, message="AssertionError: expected 3\nbut got 4"),
            fact("ships", E, required=True),
            fact("lists", P, required=True),
        ],
        defects=[defect(12, Severity.CRITICAL), defect(13, Severity.HIGH), defect(14, Severity.LOW)],
        target_date=TODAY + timedelta(days=7),
    )


@pytest.mark.parametrize(
    ("given", "conclusion", "title"),
    [
        (lambda: verdict(tests=[]), "neutral", "No data: no test results yet, 0 of 2 approvals"),
        (
            lambda: verdict(tests=[fact("a", P, required=True), fact("b", None, required=True)]),
            "failure",
            "At risk: coverage 50% (needs 100%), 0 of 2 approvals",
        ),
        (
            lambda: verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]})),
            "action_required",
            "Ready for sign-off: 0 of 1 approvals",
        ),
        (
            lambda: verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}), decisions=[decision("U1")]),
            "success",
            "Complete: all criteria met",
        ),
        (
            blocked,
            "failure",
            "Blocked: 2 required tests failing, pass rate 33.3% (needs 95%), 2 blocking defects, 0 of 2 approvals",
        ),
        (
            lambda: verdict(
                tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}), decisions=[decision("U1", Decision.REJECT)]
            ),
            "failure",
            "Blocked: rejected by U1",
        ),
    ],
)
def test_the_conclusion_and_title_follow_the_verdict(given, conclusion, title) -> None:
    check = gate_check(given(), details_url=PAGE)
    assert (check.conclusion, check.title) == (conclusion, title)
    assert check.name == "Milestone gate: v2.0"
    assert check.details_url == PAGE


def test_ready_for_signoff_without_a_page_to_act_on_is_neutral() -> None:
    ready = verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}))
    assert gate_check(ready).conclusion == "neutral"
    assert "details_url" not in gate_check(ready).request()


def test_overdue_is_said_in_the_title() -> None:
    late = verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}), target_date=TODAY - timedelta(days=3))
    assert gate_title(late) == "Overdue by 3 days · Ready for sign-off: 0 of 1 approvals"
    assert "overdue by 3 days" in gate_check(late).summary


def test_the_summary_is_a_criteria_table_with_the_target_date() -> None:
    summary = gate_check(blocked(), details_url=PAGE).summary
    lines = summary.splitlines()
    assert re.fullmatch(r"\*\*Blocked\*\* · active · `[█░]{10} \d+%`", lines[0]), lines[0]
    table = [line for line in lines if line.startswith("| ")]
    assert table[0] == "| | Criterion | Now | Threshold |"
    assert table[1].startswith("| ❌ | Required tests pass | 2 of 3 required tests failing") and table[1].endswith(
        "| all required pass · pass rate ≥ 95% |"
    )
    assert (
        table[2]
        == "| ❌ | Defects resolved | open defects over the limit: 1 critical (max 0), 1 high (max 0) | critical ≤ 0, high ≤ 0 |"
    )
    assert table[3] == "| ✅ | Coverage met | 3 of 3 required tests run (100%) | ≥ 100% run |"
    assert table[4] == "| ❌ | Sign-off obtained | 0 of 2 approvals | 2 of 2 approvers |"
    assert f"**Target date:** {(TODAY + timedelta(days=7)).isoformat()} · 7 days left" in lines
    assert f"[Open the milestone]({PAGE})" in lines


def test_the_text_lists_blocking_items_with_links() -> None:
    text = gate_check(blocked(), details_url=PAGE, repository_url=REPO_URL).text
    assert "### 2 required tests failing" in text
    assert (
        "- `suite.A.pays` failed since [this run](https://github.com/acme/shop/actions/runs/77)"
        " at [`0123456`](https://github.com/acme/shop/commit/0123456789abcdef): AssertionError: expected 3 but got 4"
    ) in text.splitlines()
    assert "- `suite.A.ships` error" in text.splitlines()
    assert "### 2 blocking defects" in text
    assert "- [#12](https://github.com/o/r/issues/12) defect 12 · critical, open" in text.splitlines()
    assert "#14" not in text, "a low defect within the limits blocks nothing"
    assert "### Sign-off still missing from" in text and "- U1" in text.splitlines()


def test_a_rejection_and_untested_areas_are_listed() -> None:
    rejected = verdict(
        tests=[fact("a", P, required=True), fact("b", None, required=True, suite="suite.B")],
        policy=policy(required=["suite.*"], signoff={"approvers": ["U1"]}),
        decisions=[decision("U1", Decision.REJECT)],
    )
    text = gate_check(rejected).text
    assert "### Not run: 1 test in 1 area" in text
    assert "- **suite.B** (1): `suite.B.b`" in text.splitlines()
    assert "### Rejected" in text and "- U1: reason" in text.splitlines()


def test_a_pipe_in_a_table_cell_is_escaped_once() -> None:
    # Approvers as facts (resolved people): the policy could not name one with a pipe.
    rejected = verdict(tests=GREEN, policy=policy(), approvers=["a|b"], decisions=[decision("a|b", Decision.REJECT)])
    [row] = [line for line in gate_check(rejected).summary.splitlines() if "Sign-off obtained" in line]
    assert row == "| ❌ | Sign-off obtained | rejected by a\\|b | 1 of 1 approvers |"


def test_markdown_in_names_is_escaped() -> None:
    sneaky = DefectFact(5, "<img src=x> *bold* | pipe", Severity.CRITICAL, DefectState.OPEN, None)
    text = gate_check(verdict(tests=GREEN, defects=[sneaky])).text
    assert "- #5 \\<img src=x\\> \\*bold\\* \\| pipe · critical, open" in text.splitlines()


def test_five_thousand_failing_required_tests_fit_with_a_line_saying_how_many_are_left_out() -> None:
    many = [
        fact(f"test_{index:05d}_" + "x" * 40, F, required=True, failing_since=SINCE, message="boom " * 30)
        for index in range(5000)
    ]
    huge = verdict(tests=many, defects=[defect(n, Severity.CRITICAL) for n in range(1, 301)])
    check = gate_check(huge, details_url=PAGE, repository_url=REPO_URL)
    body = check.request()
    for field in ("summary", "text"):
        assert len(body["output"][field].encode()) <= FIELD_LIMIT
    text = check.text
    shown_tests = sum(1 for line in text.splitlines() if line.startswith("- `suite.A.test_"))
    shown_defects = sum(1 for line in text.splitlines() if line.startswith("- [#"))
    assert 50 < shown_tests < 5000
    assert shown_defects == 300 or shown_defects == shown_tests, "every section gets the same share"
    assert (
        f"- _… and {5000 - shown_tests:,} more failing tests not shown: see [the milestone]({PAGE})_"
        in text.splitlines()
    )
    assert (
        check.title
        == "Blocked: 5,000 required tests failing, pass rate 0% (needs 95%), 300 blocking defects, 0 of 2 approvals"
    )


def test_fitting_keeps_every_heading_even_when_items_must_go() -> None:
    sections = [Section("One", [f"- item {n}" for n in range(1000)], "items"), Section("Two", ["- only"], "things")]
    text = fit_sections(sections, 300)
    assert len(text.encode()) <= 300
    assert "### One" in text and "### Two" in text
    assert "- only" in text
    assert fit_sections(sections[1:], 300) == "### Two\n\n- only"


def test_the_status_of_single_token_mode_fits_in_140_characters() -> None:
    status = gate_status(blocked(), PAGE)
    assert status.request() == {
        "state": "failure",
        "context": "milestone-gate/v2.0",
        "description": "Blocked: 2 required tests failing, pass rate 33.3% (needs 95%), 2 blocking defects, 0 of 2 approvals",
        "target_url": PAGE,
    }
    many = verdict(
        tests=GREEN,
        policy=policy(signoff={"approvers": [f"U{n:03d}" for n in range(60)]}),
        decisions=[decision(f"U{n:03d}", Decision.REJECT) for n in range(60)],
    )
    long = gate_status(many)
    assert len(long.description) == STATUS_DESCRIPTION_LIMIT and long.description.endswith("…")
    assert gate_status(verdict(tests=[])).state == "pending"


def test_identical_output_has_an_identical_digest() -> None:
    assert gate_check(blocked()).digest == gate_check(blocked()).digest
    assert gate_check(blocked()).digest != gate_check(blocked(), details_url=PAGE).digest
    assert left_milestone_check("v2.0").conclusion == "neutral"
    assert left_milestone_check("v2.0").title == "This pull request is no longer in this milestone"


def test_the_config_check_has_an_annotation_per_error_at_its_line() -> None:
    load = load_policy("plans:\n  smoke: {workflow: 3}\nmilestones:\n  v2:\n    pass_rate: 1.5\n    bogus: 1\n")
    check = config_check(load, DEFAULT_SOURCE, "abcdef0123")
    assert (check.name, check.conclusion, check.title) == (
        "Milestone config",
        "failure",
        "3 errors in .github/milestones.yml",
    )
    assert [(a["start_line"], a["end_line"], a["annotation_level"], a["message"]) for a in check.annotations] == [
        (2, 2, "failure", "must be text; put it in quotes"),
        (5, 5, "failure", "must be between 0 and 1"),
        (6, 6, "failure", "unknown key 'bogus'"),
    ]
    assert {a["path"] for a in check.annotations} == {DEFAULT_SOURCE}
    assert "- line 5: milestones.v2.pass\\_rate: must be between 0 and 1" in check.summary.splitlines()
    assert config_status(load, DEFAULT_SOURCE).description == "3 errors; line 2: must be text; put it in quotes"


def test_an_annotation_message_is_clipped_to_githubs_64_kb_in_bytes() -> None:
    from core.policy_file import PolicyError, PolicyLoad

    wide = "é" * 40_000  # 40,000 characters, 80,000 bytes
    load = PolicyLoad(
        None, [PolicyError(DEFAULT_SOURCE, "milestones", 3, wide), PolicyError(DEFAULT_SOURCE, "", 1, "short")]
    )
    check = config_check(load, DEFAULT_SOURCE, "abcdef0")
    long, short = (annotation["message"] for annotation in check.annotations)
    assert len(long.encode()) <= 64 * 1024 and long.endswith("é…") and short == "short"


def test_annotations_go_in_batches_of_fifty() -> None:
    text = "milestones:\n" + "".join(f"  m{n}:\n    pass_rate: 7\n" for n in range(120))
    check = config_check(load_policy(text), DEFAULT_SOURCE, "abcdef0")
    batches = check.annotation_batches()
    assert [len(batch) for batch in batches] == [ANNOTATIONS_PER_REQUEST, ANNOTATIONS_PER_REQUEST, 20]
    assert batches[2][-1]["start_line"] == 3 + 2 * 119


def test_a_valid_or_removed_config_succeeds() -> None:
    valid = config_check(load_policy("plans:\n  smoke: {workflow: ci.yml}\n"), DEFAULT_SOURCE, "abcdef0")
    assert (valid.conclusion, valid.title) == ("success", "Milestone config is valid")
    assert valid.summary == "`.github/milestones.yml` at `abcdef0` is valid: 1 plan, 0 milestones."
    removed = config_check(None, DEFAULT_SOURCE, "abcdef0")
    assert removed.conclusion == "success" and "default policy" in removed.summary


def test_a_user_group_whose_members_are_not_known_keeps_the_check_waiting() -> None:
    waiting = verdict(
        tests=GREEN,
        policy=policy(signoff={"approvers": ["@qa-leads"]}),
        approvers=[],
        unresolved_approvers=["@qa-leads"],
    )
    check = gate_check(waiting)
    assert check.title == "Ready for sign-off: 0 approvals; members of @qa-leads not known yet"
    [row] = [line for line in check.summary.splitlines() if "Sign-off obtained" in line]
    assert (
        row
        == "| ❌ | Sign-off obtained | 0 approvals; members of @qa-leads not known yet | members of @qa-leads not known |"
    )


def test_a_planned_or_closed_milestone_says_so_in_the_title() -> None:
    start = TODAY + timedelta(days=2)
    planned = verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}), start_date=start)
    assert gate_title(planned) == f"Planned (starts {start.isoformat()}) · Ready for sign-off: 0 of 1 approvals"
    closed = verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}), closed=True)
    assert gate_title(closed) == "Closed · Ready for sign-off: 0 of 1 approvals"
    active = verdict(tests=GREEN, policy=policy(signoff={"approvers": ["U1"]}))
    assert gate_title(active) == "Ready for sign-off: 0 of 1 approvals"


def test_a_roll_up_lists_its_included_milestones_as_a_criterion() -> None:
    from core.enums import GateStatus, Lifecycle
    from core.gate import IncludedFact

    children = [
        IncludedFact("Sprint 24", GateStatus.COMPLETE, Lifecycle.COMPLETED, 100),
        IncludedFact("Sprint 25", GateStatus.BLOCKED, Lifecycle.ACTIVE, 40),
    ]
    red = verdict(tests=GREEN, policy=policy(includes=["Sprint *"]), included=children)
    assert red.status is GateStatus.BLOCKED
    assert gate_title(red) == "Blocked: 1 included milestone not complete: Sprint 25"
    assert "| ❌ | Included milestones complete | 1 of 2 included milestones complete | every one complete |" in (
        gate_check(red).summary
    )
