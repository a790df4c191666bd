"""A milestone's tests, defects and trend as lists: what they hold and their titles, the
same in Slack (bot/views/milestones.py) and on the command line (core/reads.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.enums import SEVERITY_ORDER, DefectState, Severity, TestStatus
from core.gate import DefectFact, TestFact, UntestedArea
from core.history import History
from core.metrics import is_flaky
from core.readings import MilestoneReading
from core.wording import percent, plural


@dataclass(frozen=True)
class DefectsList:
    title: str
    # Blocking ones first, then by severity and number.
    defects: list[DefectFact]
    blocking: frozenset[int]
    empty: str


def defects_list(reading: MilestoneReading, severity: str | None) -> DefectsList:
    """The defects not yet verified (of one severity when given)."""
    blocking = frozenset(defect.number for defect in reading.verdict.blocking.defects)
    wanted = Severity(severity) if severity else None
    counted = [
        defect
        for defect in reading.facts.defects
        if defect.state is not DefectState.VERIFIED and (wanted is None or defect.severity is wanted)
    ]
    counted.sort(
        key=lambda defect: (defect.number not in blocking, SEVERITY_ORDER.index(defect.severity), defect.number)
    )
    kind = f"{wanted.value} " if wanted else ""
    title = f"{reading.name} · {plural(len(counted), kind + 'defect')} not yet verified, {len(blocking)} blocking"
    return DefectsList(title, counted, blocking, f"{reading.name}: no {kind}defects open.")


@dataclass(frozen=True)
class TestsList:
    kind: str
    title: str
    # failing and flaky: the tests, required ones first; untested: by area.
    tests: list[TestFact]
    untested: Sequence[UntestedArea]


def tests_list(reading: MilestoneReading, kind: str | None) -> TestsList:
    kind = kind or "failing"
    if kind == "untested":
        areas = reading.verdict.blocking.untested
        total = sum(len(area.tests) for area in areas)
        return TestsList(kind, f"{reading.name} · {plural(total, 'test')} not run yet", [], areas)
    tests = reading.facts.tests
    if kind == "flaky":
        chosen = sorted((test for test in tests if is_flaky(test.flaky, test.recent)), key=tests_order)
        return TestsList(kind, f"{reading.name} · {plural(len(chosen), 'flaky test')}", chosen, [])
    triage = reading.verdict.triage
    quarantined = {entry.name for entry in triage.quarantined}
    if kind == "quarantined":
        chosen = sorted((test for test in tests if test.display_name in quarantined), key=tests_order)
        return TestsList(kind, f"{reading.name} · {plural(len(chosen), 'test')} in quarantine", chosen, [])
    known = {failure.name for failure in triage.known}
    # Untriaged failures first: known and quarantined ones have someone on them already.
    failing = sorted(
        (test for test in tests if test.latest is not None and test.latest.is_failing),
        key=lambda test: (test.display_name in known, test.display_name in quarantined, *tests_order(test)),
    )
    required = sum(1 for test in failing if test.required)
    title = f"{reading.name} · {plural(len(failing), 'failing test')}, {required:,} of them required"
    if triage.clusters:
        title += f", {plural(len(triage.clusters), 'cause')}"
    return TestsList(kind, title, failing, [])


def tests_order(test: TestFact) -> tuple[bool, bool, str]:
    return (not test.required, test.latest is not TestStatus.ERROR, test.display_name)


def trend_title(reading: MilestoneReading, history: History) -> str:
    """`v2.0 (acme/shop) trend: pass rate from 80% to 95%, 2 regressions` (one line)."""
    change = pass_rate_change(history)
    regressions = len(reading.verdict.metrics.regressions)
    return (
        f"{reading.name} ({reading.repository}) trend: pass rate{change or ' unknown'}, "
        f"{plural(regressions, 'regression')}"
    )


def pass_rate_change(history: History) -> str:
    rates = [day.pass_rate for day in history.days]
    first_rate = next((rate for rate in rates if rate is not None), None)
    last_rate = rates[-1] if rates else None
    if first_rate is None or last_rate is None:
        return ""
    return f" from {percent(first_rate)} to {percent(last_rate)}"
