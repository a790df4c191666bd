"""Verdicts as JSON and as text for a terminal: pure functions of a Verdict."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from enum import Enum
from typing import Any, NamedTuple, assert_never

from core.enums import CriterionResult, GateStatus, TestStatus
from core.gate import (
    AnyCriterion,
    Cluster,
    CoverageNumbers,
    DefectFact,
    DefectsNumbers,
    IncludesNumbers,
    QuarantinedTest,
    SignoffNumbers,
    TestsNumbers,
    Triage,
    Verdict,
)
from core.lifecycle import LIFECYCLE_TITLE
from core.wording import days_left, percent, plural, progress_bar, short_sha

MARK = {CriterionResult.MET: "✔", CriterionResult.NOT_MET: "✘", CriterionResult.NO_DATA: "?"}
STATUS_TITLE = {
    GateStatus.COMPLETE: "complete",
    GateStatus.READY_FOR_SIGNOFF: "ready for sign-off",
    GateStatus.AT_RISK: "at risk",
    GateStatus.BLOCKED: "blocked",
    GateStatus.NO_DATA: "no data",
}
LIST_LIMIT = 10


class CriterionText(NamedTuple):
    """A criterion in words, as every renderer shows it (the terminal, check runs, the milestone
    page, Slack). Plain text: each renderer escapes it for its medium."""

    title: str
    threshold: str
    # How far along it is, for a progress bar (None: not known yet); `gauged` False: a bar does
    # not suit it (open defects are a count against limits, not a share).
    progress: float | None
    gauged: bool
    # What fails, a few words each, for one-line titles; none when met.
    problems: list[str]


def criterion_text(criterion: AnyCriterion) -> CriterionText:
    """The one place that words each criterion: a new criterion adds its case here."""
    numbers = criterion.numbers
    failing = criterion.result is CriterionResult.NOT_MET
    problems = [] if criterion.met else [criterion.summary]
    match numbers:
        case TestsNumbers():
            required = numbers.required_pass_rate_threshold
            threshold = "all required pass" if required >= 1 else f"required ≥ {percent(required)}"
            threshold += f" · pass rate ≥ {percent(numbers.pass_rate_threshold)}"
            if failing:
                problems = []
                if numbers.required_failing:
                    problems.append(plural(numbers.required_failing, "required test") + " failing")
                rate, needed = numbers.pass_rate, numbers.pass_rate_threshold
                if rate is not None and rate < needed:
                    problems.append(f"pass rate {percent(rate)} (needs {percent(needed)})")
            return CriterionText("Required tests pass", threshold, numbers.pass_rate, True, problems)
        case DefectsNumbers():
            threshold = ", ".join(f"{severity} ≤ {limit}" for severity, limit in numbers.limits.items()) or "no limits"
            if numbers.require_verified:
                threshold += " · fixes verified"
            if failing:
                problems = [plural(numbers.blocking, "blocking defect")]
            return CriterionText("Defects resolved", threshold, None, False, problems)
        case CoverageNumbers():
            if failing:
                problems = [f"coverage {percent(numbers.coverage)} (needs {percent(numbers.threshold)})"]
            return CriterionText(
                "Coverage met", f"≥ {percent(numbers.threshold)} run", numbers.coverage, True, problems
            )
        case SignoffNumbers():
            threshold = f"{numbers.quorum} of {len(numbers.approvers)} approvers" if numbers.approvers else "none"
            if numbers.unresolved:
                unknown = f"members of {', '.join(numbers.unresolved)} not known"
                threshold = f"{threshold} ({unknown})" if numbers.approvers else unknown
            progress = numbers.approvals / numbers.quorum if numbers.quorum else None
            return CriterionText("Sign-off obtained", threshold, progress, True, problems)
        case IncludesNumbers():
            threshold = "every one complete" + (" or closed" if numbers.allow_closed else "")
            if failing:
                waiting = [child.name for child in numbers.milestones if not child.counts]
                problems = [f"{plural(len(waiting), 'included milestone')} not complete: {', '.join(waiting[:5])}"]
            return CriterionText("Included milestones complete", threshold, numbers.progress, True, problems)
    assert_never(numbers)


def clone_text(name: str, source: str, policy_entry: str | None, github: bool) -> str:
    """What a clone did, in the words the CLI and Slack share."""
    parts = [f"milestone {name} cloned from {source}"]
    if policy_entry is not None:
        parts.append(f"the policy entry {policy_entry!r} already matches {name} and wins over the copy")
    else:
        parts.append("same plans, branches, required tests, thresholds, defect limits, approvers and tags")
    if github:
        parts.append("its GitHub milestone is being created")
    return "; ".join(parts)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return {name: jsonable(item) for name, item in value._asdict().items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(jsonable(key)): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    return value


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    data: dict[str, Any] = jsonable(verdict)
    data["criteria"] = [
        {"name": c.name, "met": c.met, "result": c.result.value, "summary": c.summary, **jsonable(c.numbers)}
        for c in verdict.criteria
    ]
    data["gate_green"] = verdict.gate_green
    return data


def render_verdict(verdict: Verdict) -> str:
    lines = [_headline(verdict), ""]
    width = max(20, *(len(criterion_text(criterion).title) for criterion in verdict.criteria))
    lines += [_criterion_line(criterion, width) for criterion in verdict.criteria]
    if rolled_up := rolled_up_lines(verdict):
        lines += ["", "Included milestones", *rolled_up]
    metrics = verdict.metrics
    lines += ["", "Progress"]
    rate = percent(metrics.pass_rate)
    lines.append(f"  pass rate {rate} ({metrics.direction.value})")
    tests = metrics.tests
    lines.append(
        f"  tests: {tests['total']} known, {tests['passed']} passed, {tests['failed']} failed, "
        f"{tests['error']} errors, {tests['skipped']} skipped, {tests['not_run']} not run"
    )
    opened = ", ".join(f"{count} {severity}" for severity, count in metrics.defects_open.items() if count)
    lines.append(f"  open defects: {opened or 'none'}")
    if metrics.regressions:
        lines.append(f"  regressions: {len(metrics.regressions)}")
    if metrics.flaky:
        lines.append(f"  flaky tests: {len(metrics.flaky)}")
    forecast = metrics.forecast
    when = forecast.date.isoformat() if forecast.date else "no date"
    lines.append(f"  forecast: {when} ({forecast.reason})")
    blocking = _blocking_lines(verdict)
    if blocking:
        lines += ["", "Blocking", *blocking]
    triage = triage_lines(verdict.triage)
    if triage:
        lines += ["", "Triage", *triage]
    if verdict.warnings:
        lines += ["", "Warnings", *(f"  ! {warning}" for warning in verdict.warnings)]
    return "\n".join(lines)


def _headline(verdict: Verdict) -> str:
    parts = [f"{verdict.milestone}: {STATUS_TITLE[verdict.status]}", LIFECYCLE_TITLE[verdict.lifecycle]]
    parts.append(completion_text(verdict.completion))
    if verdict.start_date:
        parts.append(f"starts {verdict.start_date.isoformat()}")
    if verdict.target_date:
        parts.append(f"target {verdict.target_date.isoformat()}, {days_left(verdict.days_left or 0)}")
    return " · ".join(parts)


def completion_text(completion: int | None) -> str:
    """The completion figure with its bar, as the terminal and Slack show it."""
    if completion is None:
        return "completion n/a"
    return f"{progress_bar(completion / 100)} {completion}%"


def rolled_up_lines(verdict: Verdict) -> list[str]:
    includes = verdict.criteria.includes
    if includes is None:
        return []
    return [
        f"  {'✔' if child.counts else '✘'} {child.name}: {LIFECYCLE_TITLE[child.lifecycle]}, "
        f"{STATUS_TITLE[child.status]}, {completion_text(child.completion)}"
        for child in includes.numbers.milestones
    ]


def _criterion_line(criterion: AnyCriterion, width: int) -> str:
    return f"  {MARK[criterion.result]} {criterion_text(criterion).title:<{width}} {criterion.summary}"


def _blocking_lines(verdict: Verdict) -> list[str]:
    blocking = verdict.blocking
    lines: list[str] = []
    lines += _capped(
        (
            f"  ✘ {test.name} ({failing_text(test.status, test.known)}"
            + (f", failing since {short_sha(test.since.commit_sha)}" if test.since and test.since.commit_sha else "")
            + ")"
            for test in blocking.failing_tests
        ),
        len(blocking.failing_tests),
        "failing required tests",
    )
    lines += _capped(
        (f"  ✘ #{d.number} [{d.severity.value}] {d.title}" for d in blocking.defects),
        len(blocking.defects),
        "blocking defects",
    )
    if not verdict.criteria.coverage.met:
        lines += _capped(
            (f"  ? untested in {area.suite}: {plural(len(area.tests), 'test')}" for area in blocking.untested),
            len(blocking.untested),
            "untested areas",
        )
    if blocking.rejections:
        lines += [f"  ✘ rejected by {r.user_id}: {r.comment}" for r in blocking.rejections]
    if blocking.missing_approvers:
        lines.append("  … awaiting sign-off from " + ", ".join(blocking.missing_approvers))
    return lines


def failing_text(status: TestStatus, known: Sequence[DefectFact]) -> str:
    """'failed' or 'error' for a new failure; with its open defects: 'failing, known: #101 [critical]'."""
    if not known:
        return status.value
    return "failing, known: " + ", ".join(f"#{defect.number} [{defect.severity.value}]" for defect in known)


def cluster_title(cluster: Cluster) -> str:
    """'31 tests: ConnectionError: connect to db:<n> refused'."""
    return f"{plural(cluster.count, 'test')}: {cluster.signature}"


def quarantine_text(entry: QuarantinedTest) -> str:
    """Why and since when a test is in quarantine, and until when."""
    by = {"policy": "the policy file", "auto": "the flaky rule"}.get(entry.source, entry.by)
    parts = [f"by {by} on {entry.since:%Y-%m-%d}"]
    if entry.reason:
        parts.append(entry.reason)
    if entry.expires_on:
        parts.append(f"until {entry.expires_on.isoformat()}")
    return "; ".join(parts)


def triage_lines(triage: Triage) -> list[str]:
    """The terminal's triage: failures by cause, known ones with their defects, quarantine,
    and fixes to verify."""
    lines: list[str] = []
    lines += _capped(
        (f"  ● {cluster_title(cluster)}" for cluster in triage.clusters), len(triage.clusters), "failure clusters"
    )
    if triage.new:
        lines.append(f"  new, untriaged: {plural(len(triage.new), 'failing test')}")
    if triage.accepted:
        lines += _capped(
            (
                f"  ~ accepted known failure: {known.name} ({failing_text(known.status, known.defects)})"
                for known in triage.accepted
            ),
            len(triage.accepted),
            "accepted known failures",
        )
    lines += _capped(
        (f"  ⏸ quarantined: {entry.name} ({quarantine_text(entry)})" for entry in triage.quarantined),
        len(triage.quarantined),
        "quarantined tests",
    )
    lines += [f"  ✔ ready to verify: #{entry.defect.number} {entry.defect.title}" for entry in triage.ready_to_verify]
    return lines


def _capped(lines: Iterable[str], total: int, what: str) -> list[str]:
    shown: list[str] = []
    for line in lines:
        if len(shown) == LIST_LIMIT:
            shown.append(f"  … and {total - LIST_LIMIT} more {what}")
            break
        shown.append(line)
    return shown


def page_section(verdict: Verdict) -> str:
    """The section of the milestone page (its anchor) that a check or a Slack card about this
    verdict opens on: what blocks it first, or the sign-off when that is what it waits for."""
    blocking = verdict.blocking
    if blocking.failing_tests:
        return "failing"
    if blocking.defects:
        return "defects"
    if blocking.untested:
        return "untested"
    if verdict.status in (GateStatus.READY_FOR_SIGNOFF, GateStatus.COMPLETE) or blocking.rejections:
        return "signoff"
    return "criteria"
