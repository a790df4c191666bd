"""Live alerts: what is new about a milestone since the last alert, said once.

An alert compares the milestone's state now with the state the last alert recorded, so a
burst of changes (a launch failing 200 tests, a storm of issue events) that settles into
one state is one alert, and nothing is said twice. Completion and reopening are announced
with sign-off (bot.signoffs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.enums import DefectState, GateStatus, Lifecycle, Severity
from core.readings import MilestoneReading

ALERT_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
DUE_SOON_DAYS = 3


def alert_state(reading: MilestoneReading) -> dict[str, Any]:
    verdict = reading.verdict
    complete = verdict.status is GateStatus.COMPLETE
    return {
        "status": verdict.status.value,
        "green": verdict.gate_green,
        "failing": sorted(test.name for test in verdict.blocking.failing_tests),
        "defects": {
            str(defect.number): defect.severity.value
            for defect in reading.facts.defects
            if defect.state is DefectState.OPEN and defect.severity in ALERT_SEVERITIES
        },
        "due_soon": bool(
            not complete
            and not verdict.gate_green
            and verdict.days_left is not None
            and 0 <= verdict.days_left <= DUE_SOON_DAYS
        ),
        "overdue": verdict.overdue,
        "planned": verdict.lifecycle is Lifecycle.PLANNED,
    }


@dataclass(frozen=True)
class Alert:
    """What one alert says; empty when nothing is new."""

    turned_red: bool = False
    turned_green: bool = False
    regressions: list[str] = field(default_factory=list)
    defects: dict[str, str] = field(default_factory=dict)
    due_soon: bool = False
    overdue: bool = False

    def __bool__(self) -> bool:
        return any((self.turned_red, self.turned_green, self.regressions, self.defects, self.due_soon, self.overdue))


def what_is_new(before: dict[str, Any] | None, now: dict[str, Any]) -> Alert:
    """The first look records the state and says nothing: a channel is not told the past; nor
    is it told about a milestone before its start (planned), whose gate is evaluated all the same."""
    if before is None or now.get("planned"):
        return Alert()
    return Alert(
        turned_red=before["green"] and not now["green"],
        turned_green=not before["green"] and now["green"],
        regressions=[name for name in now["failing"] if name not in before["failing"]],
        defects={number: severity for number, severity in now["defects"].items() if number not in before["defects"]},
        due_soon=now["due_soon"] and not before["due_soon"],
        overdue=now["overdue"] and not before["overdue"],
    )
