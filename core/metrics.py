"""Progress metrics over time (PRODUCT.md section 4): pure functions of recorded points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

# A slope below this (pass rate per launch) is noise, not a direction.
DIRECTION_TOLERANCE = 0.002
# Per day: slower than this, a trend is flat (rounding noise), not converging.
PASS_RATE_DRIFT = 0.0005
DEFECT_DRIFT = 0.01
# A projection further out than this says "not converging", not a date.
FORECAST_HORIZON_DAYS = 730
FLAKY_FLIPS = 2
# How many runs of each test the milestone state keeps (milestone_test.recent).
RECENT_RUNS = 10


class Direction(StrEnum):
    IMPROVING = "improving"
    DECLINING = "declining"
    STABLE = "stable"
    UNKNOWN = "unknown"


def slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope; None when the points cannot define one."""
    n = len(xs)
    if n < 2:
        return None
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


def direction(pass_rates: Sequence[float]) -> Direction:
    """Direction of the pass rate over launches, oldest first."""
    trend = slope(range(len(pass_rates)), pass_rates)
    if trend is None:
        return Direction.UNKNOWN
    if trend > DIRECTION_TOLERANCE:
        return Direction.IMPROVING
    if trend < -DIRECTION_TOLERANCE:
        return Direction.DECLINING
    return Direction.STABLE


# A verdict asks this of every listed test, whose recent runs repeat a few patterns.
@lru_cache(maxsize=4096)
def flips(recent: str) -> int:
    """How often a test changed between passing and failing over its recent runs."""
    outcomes = [letter == "P" for letter in recent if letter != "S"]
    return sum(1 for newer, older in pairwise(outcomes) if newer != older)


def is_flaky(flaky_flag: bool, recent: str) -> bool:
    """Flaky: passed and failed on one commit or in one launch, or flipping back and forth."""
    if flaky_flag:
        return True
    # Most tests never failed lately: no failure letter, no flip to count.
    if "F" not in recent and "E" not in recent:
        return False
    return flips(recent) >= FLAKY_FLIPS


class TrendPoint(NamedTuple):
    at: datetime
    pass_rate: float | None
    open_blocking: int


class Forecast(NamedTuple):
    date: date | None
    at_risk: bool
    reason: str


def forecast(
    points: Sequence[TrendPoint],
    *,
    pass_rate_threshold: float,
    gate_met: bool,
    today: date,
    target_date: date | None,
) -> Forecast:
    """Project when open blocking defects reach zero and the pass rate its threshold."""
    if gate_met:
        return Forecast(today, False, "criteria met today")
    if len(points) < 2:
        return Forecast(None, False, "not enough history for a forecast")
    origin = points[0].at
    days = [(point.at - origin).total_seconds() / 86400 for point in points]
    latest = points[-1]
    waits: list[float] = []
    if latest.open_blocking > 0:
        trend = slope(days, [point.open_blocking for point in points])
        if trend is None or trend > -DEFECT_DRIFT:
            return _no_convergence(target_date, "blocking defects are not going down")
        waits.append(latest.open_blocking / -trend)
    if latest.pass_rate is not None and latest.pass_rate < pass_rate_threshold:
        rated = [(day, point.pass_rate) for day, point in zip(days, points, strict=True) if point.pass_rate is not None]
        trend = slope([day for day, _ in rated], [rate for _, rate in rated])
        if trend is None or trend < PASS_RATE_DRIFT:
            return _no_convergence(target_date, "the pass rate is not rising")
        waits.append((pass_rate_threshold - latest.pass_rate) / trend)
    if not waits:
        return Forecast(None, False, "no trend to project: tests not run yet or failing")
    if max(waits) > FORECAST_HORIZON_DAYS:
        return _no_convergence(target_date, "the trends are too slow to reach the thresholds")
    projected = max(today, latest.at.date() + timedelta(days=math.ceil(max(waits))))
    late = target_date is not None and projected > target_date
    reason = "projected after the target date" if late else "on track for the target date"
    return Forecast(projected, late, reason if target_date else "projected from the trend")


def _no_convergence(target_date: date | None, reason: str) -> Forecast:
    return Forecast(None, target_date is not None, reason)
