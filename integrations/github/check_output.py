"""What a pull request shows of a milestone's gate: check runs and commit statuses, as pure
functions of a verdict (and of a policy file's validation), within GitHub's limits."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.enums import CriterionResult, GateStatus, Lifecycle
from core.gate import AnyCriterion, Cluster, DefectFact, FailingTest, LaunchRef, Verdict
from core.lifecycle import LIFECYCLE_TITLE
from core.policy_file import PolicyLoad
from core.report import STATUS_TITLE, completion_text, criterion_text, quarantine_text
from core.wording import clip, clip_bytes, days, days_left, listed, one_line, plural, short_sha

# GitHub's limits: characters per output field, annotations per request, status description.
FIELD_LIMIT = 65_535
ANNOTATIONS_PER_REQUEST = 50
STATUS_DESCRIPTION_LIMIT = 140
TITLE_LIMIT = 200
ITEM_LIMIT = 1_000
UNTESTED_NAMES = 20  # names shown per area not run
# An annotation's message: "The maximum size is 64 KB" (bytes, not characters).
ANNOTATION_MESSAGE_BYTES = 64 * 1024

GATE_PREFIX = "Milestone gate: "
CONFIG_CHECK = "Milestone config"
STATUS_PREFIX = "milestone-gate/"
CONFIG_STATUS = "milestone-config"
REEVALUATE = "reevaluate"
ACTIONS = [{"label": "Re-evaluate", "description": "Compute the milestone gate again", "identifier": REEVALUATE}]

CONCLUSION = {
    GateStatus.COMPLETE: "success",
    GateStatus.READY_FOR_SIGNOFF: "action_required",
    GateStatus.BLOCKED: "failure",
    GateStatus.AT_RISK: "failure",
    GateStatus.NO_DATA: "neutral",
}
# A commit status has no neutral: what waits for data or a decision is pending.
STATUS_STATE = {
    GateStatus.COMPLETE: "success",
    GateStatus.READY_FOR_SIGNOFF: "pending",
    GateStatus.BLOCKED: "failure",
    GateStatus.AT_RISK: "failure",
    GateStatus.NO_DATA: "pending",
}
MARK = {CriterionResult.MET: "✅", CriterionResult.NOT_MET: "❌", CriterionResult.NO_DATA: "➖"}
LEFT_MILESTONE = "no longer in this milestone"


@dataclass(frozen=True)
class CheckOutput:
    """A check run as GitHub takes it: `request()` is the body of a create or an edit."""

    name: str
    conclusion: str
    title: str
    summary: str
    text: str = ""
    details_url: str | None = None
    actions: list[dict[str, str]] = field(default_factory=list)
    annotations: list[dict[str, Any]] = field(default_factory=list)

    def request(self, annotations: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        # Text even when empty: an edit must not leave the previous verdict's list behind.
        output: dict[str, Any] = {"title": self.title, "summary": self.summary, "text": self.text}
        if annotations:
            output["annotations"] = list(annotations)
        body: dict[str, Any] = {
            "name": self.name,
            "status": "completed",
            "conclusion": self.conclusion,
            "output": output,
        }
        if self.details_url:
            body["details_url"] = self.details_url
        if self.actions:
            body["actions"] = self.actions
        return body

    def annotation_batches(self) -> list[list[dict[str, Any]]]:
        """The annotations in requests of at most 50: the first goes with the create, the rest as edits."""
        return [
            self.annotations[start : start + ANNOTATIONS_PER_REQUEST]
            for start in range(0, len(self.annotations), ANNOTATIONS_PER_REQUEST)
        ]

    @property
    def digest(self) -> str:
        return _digest({"check": self.request(), "annotations": self.annotations})


@dataclass(frozen=True)
class StatusOutput:
    """A commit status, for single-token mode, where check runs cannot be written."""

    context: str
    state: str
    description: str
    target_url: str | None = None

    def request(self) -> dict[str, Any]:
        body = {"state": self.state, "description": self.description, "context": self.context}
        if self.target_url:
            body["target_url"] = self.target_url
        return body

    @property
    def conclusion(self) -> str:
        return self.state

    @property
    def digest(self) -> str:
        return _digest(self.request())


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# The milestone gate ---------------------------------------------------------


def gate_check_name(milestone: str) -> str:
    return GATE_PREFIX + milestone


def gate_check(verdict: Verdict, *, details_url: str | None = None, repository_url: str | None = None) -> CheckOutput:
    """The check run for a verdict; `repository_url` (https://github.com/o/r) links commits."""
    conclusion = CONCLUSION[verdict.status]
    if conclusion == "action_required" and not details_url:
        conclusion = "neutral"  # action_required must lead somewhere the action can be taken
    return CheckOutput(
        name=gate_check_name(verdict.milestone),
        conclusion=conclusion,
        title=gate_title(verdict),
        summary=_summary(verdict, details_url),
        text=_text(verdict, details_url, repository_url),
        details_url=details_url,
        actions=ACTIONS,
    )


def left_milestone_check(milestone: str, details_url: str | None = None) -> CheckOutput:
    return CheckOutput(
        name=gate_check_name(milestone),
        conclusion="neutral",
        title=f"This pull request is {LEFT_MILESTONE}",
        summary=f"The pull request is {LEFT_MILESTONE} ({_escape(milestone)}): its gate does not apply here any more.",
        details_url=details_url,
    )


def gate_status(verdict: Verdict, target_url: str | None = None) -> StatusOutput:
    return StatusOutput(
        context=STATUS_PREFIX + verdict.milestone,
        state=STATUS_STATE[verdict.status],
        description=clip(gate_title(verdict), STATUS_DESCRIPTION_LIMIT),
        target_url=target_url,
    )


def left_milestone_status(milestone: str, target_url: str | None = None) -> StatusOutput:
    return StatusOutput(STATUS_PREFIX + milestone, "success", f"This pull request is {LEFT_MILESTONE}", target_url)


def gate_title(verdict: Verdict) -> str:
    """One line: the status, then what stands in the way ("Blocked: 2 blocking defects, 3 required tests failing")."""
    status = STATUS_TITLE[verdict.status]
    problems = _problems(verdict)
    title = f"{status[:1].upper()}{status[1:]}: {', '.join(problems) if problems else 'all criteria met'}"
    if verdict.overdue and verdict.days_left is not None:
        title = f"Overdue by {days(-verdict.days_left)} · {title}"
    elif verdict.lifecycle is Lifecycle.PLANNED:
        starts = f" (starts {verdict.start_date.isoformat()})" if verdict.start_date else ""
        title = f"Planned{starts} · {title}"
    elif verdict.lifecycle is Lifecycle.CLOSED:
        title = f"Closed · {title}"
    return clip(one_line(title), TITLE_LIMIT)


def _problems(verdict: Verdict) -> list[str]:
    problems = []
    no_data_said = False
    for criterion in verdict.criteria:
        if criterion.result is CriterionResult.NO_DATA:
            if no_data_said:
                continue  # "no test results yet" says it; "no tests known" would say it again
            no_data_said = True
        problems += criterion_text(criterion).problems
    return problems


def _summary(verdict: Verdict, details_url: str | None) -> str:
    status = f"**{STATUS_TITLE[verdict.status].capitalize()}** · {LIFECYCLE_TITLE[verdict.lifecycle]}"
    if verdict.overdue and verdict.days_left is not None:
        status += f" by {days(-verdict.days_left)}"
    status += f" · `{completion_text(verdict.completion)}`"
    lines = [status, "", "| | Criterion | Now | Threshold |", "|:-:|---|---|---|"]
    lines += [_criterion_row(criterion) for criterion in verdict.criteria]
    lines.append("")
    if verdict.target_date is None:
        lines.append("**Target date:** none set")
    else:
        lines.append(f"**Target date:** {verdict.target_date.isoformat()} · {days_left(verdict.days_left or 0)}")
    forecast = verdict.metrics.forecast
    if forecast.date is not None or forecast.at_risk:
        when = forecast.date.isoformat() if forecast.date else "no date"
        lines.append(f"**Forecast:** {when} ({_escape(forecast.reason)})")
    if details_url:
        lines += ["", f"[Open the milestone]({details_url})"]
    return _fit_lines(lines, FIELD_LIMIT)


def _criterion_row(criterion: AnyCriterion) -> str:
    text = criterion_text(criterion)
    cells = [MARK[criterion.result], text.title, _escape(criterion.summary), _escape(text.threshold)]
    return "| " + " | ".join(cells) + " |"  # the cells' text is escaped, pipes included


def _text(verdict: Verdict, details_url: str | None, repository_url: str | None) -> str:
    blocking = verdict.blocking
    untested = sum(len(area.tests) for area in blocking.untested)
    triage = verdict.triage
    sections = [
        Section(
            "Failures by cause",
            [_cluster_line(cluster) for cluster in triage.clusters],
            "causes",
        ),
        Section(
            plural(len(blocking.failing_tests), "required test") + " failing",
            [_failing_line(test, repository_url) for test in blocking.failing_tests],
            "failing tests",
        ),
        Section(
            plural(len(blocking.defects), "blocking defect"),
            [
                f"- {_link(f'#{defect.number}', defect.url)} {_escape(defect.title)} · {defect.severity.value}, {defect.state.value}"
                for defect in blocking.defects
            ],
            "defects",
        ),
        Section(
            f"Not run: {plural(untested, 'test')} in {plural(len(blocking.untested), 'area')}",
            [
                f"- **{_escape(area.suite or '(no suite)')}** ({len(area.tests)}): "
                + listed([_code(name) for name in area.tests], UNTESTED_NAMES)
                for area in blocking.untested
            ],
            "areas",
        ),
        Section(
            "Rejected",
            [f"- {_escape(decision.user_id)}: {_escape(decision.comment)}" for decision in blocking.rejections],
            "rejections",
        ),
        Section(
            "Sign-off still missing from", [f"- {_escape(user)}" for user in blocking.missing_approvers], "approvers"
        ),
        Section(
            f"Accepted known failures ({plural(len(triage.accepted), 'test')}, counted under defects)",
            [f"- {_code(known.name)} failing, known: {_defect_refs(known.defects)}" for known in triage.accepted],
            "accepted known failures",
        ),
        Section(
            f"Quarantined ({plural(len(triage.quarantined), 'test')}: run, but left out of the gate)",
            [
                f"- {_code(entry.name)} {entry.status.value if entry.status else 'not run'} · "
                f"{_escape(quarantine_text(entry))}"
                for entry in triage.quarantined
            ],
            "quarantined tests",
        ),
        Section(
            "Ready to verify",
            [
                f"- {_link(f'#{entry.defect.number}', entry.defect.url)} {_escape(entry.defect.title)}: "
                f"{plural(entry.total, 'linked test')} pass since it was resolved"
                for entry in triage.ready_to_verify
            ],
            "defects",
        ),
        Section("Warnings", [f"- {_escape(warning)}" for warning in verdict.warnings], "warnings"),
    ]
    return fit_sections([section for section in sections if section.items], FIELD_LIMIT, details_url)


def _cluster_line(cluster: Cluster) -> str:
    line = f"- **{plural(cluster.count, 'test')}:** {_code(clip(cluster.signature, 300))}"
    if cluster.first is not None:
        line += f" · first seen {_launch(cluster.first)}"
        if cluster.last is not None and cluster.last.id != cluster.first.id:
            line += f", last {_launch(cluster.last)}"
    return line + " · " + listed([_code(name) for name in cluster.tests], 3)


def _launch(launch: LaunchRef) -> str:
    label = f"`{short_sha(launch.commit_sha)}`" if launch.commit_sha else "in a launch"
    return _link(label, launch.url)


def _defect_refs(defects: Sequence[DefectFact]) -> str:
    return ", ".join(f"{_link(f'#{d.number}', d.url)} \\[{d.severity.value}\\]" for d in defects)


def _failing_line(test: FailingTest, repository_url: str | None) -> str:
    if test.known:
        line = f"- {_code(test.name)} failing, known: {_defect_refs(test.known)}"
    else:
        line = f"- {_code(test.name)} {test.status.value}"
    since = test.since
    if since is not None:
        line += " since " + _link("this run", since.url) if since.url else " since a launch"
        if since.commit_sha:
            commit_url = f"{repository_url}/commit/{since.commit_sha}" if repository_url else None
            line += " at " + _link(f"`{short_sha(since.commit_sha)}`", commit_url)
    if test.message:
        line += f": {_escape(one_line(test.message)[:200])}"
    return line


# Fitting within GitHub's limits ----------------------------------------------


@dataclass(frozen=True)
class Section:
    heading: str
    items: list[str]
    noun: str  # "failing tests": what the "and N more" line counts


def fit_sections(sections: Sequence[Section], limit: int, details_url: str | None = None) -> str:
    """Every section, each cut to the same number of items so that the whole stays within `limit`.

    Measured in UTF-8 bytes, which is never less than GitHub's count of characters.
    A cut section ends with a line saying how many items were left out.
    """

    def render(cap: int) -> str:
        lines: list[str] = []
        for section in sections:
            lines += [f"### {_escape(section.heading)}", ""]
            lines += [clip(item, ITEM_LIMIT) for item in section.items[:cap]]
            left_out = len(section.items) - cap
            if left_out > 0:
                where = f": see {_link('the milestone', details_url)}" if details_url else ""
                lines.append(f"- _… and {left_out:,} more {section.noun} not shown{where}_")
            lines.append("")
        return "\n".join(lines).rstrip()

    longest = max((len(section.items) for section in sections), default=0)
    whole = render(longest)
    if _size(whole) <= limit:
        return whole
    low, high = 0, longest  # render(low) fits (headings and counts only); render(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        if _size(render(middle)) <= limit:
            low = middle
        else:
            high = middle
    return render(low)


def _fit_lines(lines: list[str], limit: int) -> str:
    text = "\n".join(lines)
    if _size(text) <= limit:
        return text
    return text.encode()[: limit - 10].decode(errors="ignore") + "\n\n_(cut)_"


def _size(text: str) -> int:
    return len(text.encode())


# The policy file's check -------------------------------------------------------


def config_check(load: PolicyLoad | None, path: str, head_sha: str) -> CheckOutput:
    """`load` None: the pull request removes the file, so the defaults will apply."""
    at = f"`{path}` at `{short_sha(head_sha)}`"
    if load is None:
        return CheckOutput(
            CONFIG_CHECK,
            "success",
            "Milestone config removed",
            f"This pull request removes {at}: the default policy applies after merge.",
        )
    if load.ok:
        assert load.policy is not None
        policy = load.policy
        summary = f"{at} is valid: {plural(len(policy.plans), 'plan')}, {plural(len(policy.milestones), 'milestone')}."
        return CheckOutput(CONFIG_CHECK, "success", "Milestone config is valid", summary)
    errors = load.errors
    listed = Section(
        plural(len(errors), "error"),
        [
            f"- line {error.line or 1}: {_escape(error.path + ': ' if error.path else '')}{_escape(error.message)}"
            for error in errors
        ],
        "errors",
    )
    annotations = [
        {
            "path": path,
            "start_line": error.line or 1,
            "end_line": error.line or 1,
            "annotation_level": "failure",
            "title": clip(error.path or "invalid policy", 255),
            "message": clip_bytes(error.message, ANNOTATION_MESSAGE_BYTES),
        }
        for error in errors
    ]
    return CheckOutput(
        name=CONFIG_CHECK,
        conclusion="failure",
        title=f"{plural(len(errors), 'error')} in {path}",
        summary=fit_sections([listed], FIELD_LIMIT),
        annotations=annotations,
    )


def config_status(load: PolicyLoad | None, path: str) -> StatusOutput:
    if load is None or load.ok:
        return StatusOutput(CONFIG_STATUS, "success", f"{path} is valid" if load else f"{path} removed")
    first = load.errors[0]
    description = f"{plural(len(load.errors), 'error')}; line {first.line or 1}: {first.message}"
    return StatusOutput(CONFIG_STATUS, "failure", clip(one_line(description), STATUS_DESCRIPTION_LIMIT))


# Small helpers -------------------------------------------------------------------

_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~#])")


def _escape(text: str) -> str:
    return _MARKDOWN.sub(r"\\\1", text)


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _link(label: str, url: str | None) -> str:
    return f"[{label}]({url})" if url else label
