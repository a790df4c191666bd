"""A milestone's past, read from its snapshots: one point per day, and when its status changed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.enums import GateStatus
from core.models import Snapshot

HISTORY_DAYS = 30


@dataclass(frozen=True)
class SnapshotRow:
    taken_at: datetime
    status: GateStatus
    metrics: dict[str, Any]


@dataclass(frozen=True)
class DayPoint:
    """The milestone as it stood at the end of a day."""

    day: date
    status: GateStatus
    pass_rate: float | None
    open_blocking: int
    required_failing: int


@dataclass(frozen=True)
class StatusChange:
    at: datetime
    status: GateStatus
    before: GateStatus | None


@dataclass(frozen=True)
class History:
    days: list[DayPoint]  # oldest first, from the first day with a snapshot
    changes: list[StatusChange]  # oldest first


def daily(rows: Sequence[SnapshotRow], first: date, last: date) -> list[DayPoint]:
    """The last snapshot of each day, carried forward over days without one; days before
    the first snapshot are left out."""
    points: list[DayPoint] = []
    index = 0
    current: SnapshotRow | None = None
    day = first
    while day <= last:
        while index < len(rows) and rows[index].taken_at.date() <= day:
            current = rows[index]
            index += 1
        if current is not None:
            metrics = current.metrics
            points.append(
                DayPoint(
                    day,
                    current.status,
                    metrics.get("pass_rate"),
                    metrics.get("open_blocking", 0),
                    metrics.get("required_failing", 0),
                )
            )
        day += timedelta(days=1)
    return points


def status_changes(rows: Sequence[SnapshotRow], since: datetime) -> list[StatusChange]:
    changes = []
    before: GateStatus | None = None
    for row in rows:
        if row.status is not before and row.taken_at >= since:
            changes.append(StatusChange(row.taken_at, row.status, before))
        before = row.status
    return changes


async def milestone_history(milestone_id: int, today: date, days: int = HISTORY_DAYS) -> History:
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    seed = await Snapshot.filter(milestone_id=milestone_id, taken_at__lt=since).order_by("-taken_at", "-id").first()
    window = await Snapshot.filter(milestone_id=milestone_id, taken_at__gte=since).order_by("taken_at", "id")
    rows = [
        SnapshotRow(snapshot.taken_at, GateStatus(snapshot.status), snapshot.metrics)
        for snapshot in [*filter(None, [seed]), *window]
    ]
    return History(daily(rows, first, today), status_changes(rows, since))
