"""A milestone's lifecycle: planned, active, overdue, completed or closed. Pure functions of its
dates, its completion and whether it is closed, given today's date in the team's time zone.

"Today" is the calendar date where the team works (policy `timezone`, else the TZ setting):
a team in UTC-8 is not overdue at 4 pm the day before its target date.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from core.enums import Lifecycle

# `list` shows what needs attention first: active and overdue, then planned; completed and
# closed ones only on request.
LIST_ORDER = [Lifecycle.OVERDUE, Lifecycle.ACTIVE, Lifecycle.PLANNED, Lifecycle.COMPLETED, Lifecycle.CLOSED]
CURRENT = frozenset({Lifecycle.OVERDUE, Lifecycle.ACTIVE, Lifecycle.PLANNED})
LIFECYCLE_TITLE = {
    Lifecycle.PLANNED: "planned",
    Lifecycle.ACTIVE: "active",
    Lifecycle.COMPLETED: "completed",
    Lifecycle.OVERDUE: "overdue",
    Lifecycle.CLOSED: "closed",
}


def today_in(zone: str, now: datetime) -> date:
    """The calendar date at `now` (aware) in the IANA zone."""
    return now.astimezone(ZoneInfo(zone)).date()


def lifecycle_state(
    *, today: date, start: date | None, target: date | None, completed: bool, closed: bool
) -> Lifecycle:
    """Completed wins (a milestone closed because it completed stays completed); closed without
    completing is closed; before its start it is planned; past its target date, overdue."""
    if completed:
        return Lifecycle.COMPLETED
    if closed:
        return Lifecycle.CLOSED
    if start is not None and today < start:
        return Lifecycle.PLANNED
    if target is not None and today > target:
        return Lifecycle.OVERDUE
    return Lifecycle.ACTIVE


def days_left(today: date, target: date | None) -> int | None:
    return (target - today).days if target is not None else None
