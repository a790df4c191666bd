"""The trend chart and the overview's small pass-rate lines, laid out here and drawn as inline SVG
by the templates: readable without JavaScript, and each value is in the SVG as data and words."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.history import HISTORY_DAYS, History
from core.report import STATUS_TITLE
from core.wording import percent, plural

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 16, 40


@dataclass(frozen=True)
class ChartDay:
    day: date
    x: float
    pass_rate: float | None
    pass_y: float | None
    blocking_defects: int
    defects_y: float
    failing_required: int
    failing_y: float
    status: str

    @property
    def words(self) -> str:
        return (
            f"{self.day.isoformat()}: pass rate {percent(self.pass_rate)}, "
            f"{plural(self.blocking_defects, 'blocking defect')}, "
            f"{plural(self.failing_required, 'failing required test')}, {self.status}"
        )


@dataclass(frozen=True)
class ChartChange:
    day: date
    x: float
    status: str
    before: str | None

    @property
    def words(self) -> str:
        was = f" (was {self.before})" if self.before else ""
        return f"{self.day.isoformat()}: became {self.status}{was}"


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class TrendChart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    days: list[ChartDay]
    changes: list[ChartChange]
    count_max: int
    x_ticks: list[Tick]
    rate_ticks: list[Tick]
    count_ticks: list[Tick]
    first: date
    last: date

    @property
    def pass_line(self) -> str:
        return _polyline((day.x, day.pass_y) for day in self.days)

    @property
    def defects_line(self) -> str:
        return _polyline((day.x, day.defects_y) for day in self.days)

    @property
    def failing_line(self) -> str:
        return _polyline((day.x, day.failing_y) for day in self.days)

    @property
    def description(self) -> str:
        if not self.days:
            return f"No snapshots between {self.first.isoformat()} and {self.last.isoformat()}."
        latest = self.days[-1]
        changes = f"; {plural(len(self.changes), 'status change')}" if self.changes else ""
        return (
            f"{len(self.days)} days from {self.days[0].day.isoformat()} to {latest.day.isoformat()}. "
            f"Latest: {latest.words}{changes}."
        )


def _polyline(points: Iterable[tuple[float, float | None]]) -> str:
    """Points as SVG's `points` attribute; a day without a value is left out."""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points if y is not None)


def trend_chart(history: History, today: date, days: int = HISTORY_DAYS) -> TrendChart:
    first = today - timedelta(days=days - 1)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    count_max = max([1, *(p.open_blocking for p in history.days), *(p.required_failing for p in history.days)])
    # Whole numbers on the count axis: round its top up to a multiple of 4 above 4.
    if count_max > 4:
        count_max = -(-count_max // 4) * 4

    def x_of(day: date) -> float:
        return LEFT + plot_width * (day - first).days / max(days - 1, 1)

    def rate_y(rate: float) -> float:
        return TOP + plot_height * (1 - rate)

    def count_y(count: int) -> float:
        return TOP + plot_height * (1 - count / count_max)

    chart_days = [
        ChartDay(
            day=point.day,
            x=x_of(point.day),
            pass_rate=point.pass_rate,
            pass_y=None if point.pass_rate is None else rate_y(point.pass_rate),
            blocking_defects=point.open_blocking,
            defects_y=count_y(point.open_blocking),
            failing_required=point.required_failing,
            failing_y=count_y(point.required_failing),
            status=STATUS_TITLE[point.status],
        )
        for point in history.days
    ]
    changes = [
        ChartChange(
            change.at.date(),
            x_of(change.at.date()),
            STATUS_TITLE[change.status],
            STATUS_TITLE[change.before] if change.before else None,
        )
        for change in history.changes
        if change.at.date() >= first
    ]
    step = max(days // 6, 1)
    x_ticks = [
        Tick(x_of(first + timedelta(days=n)), (first + timedelta(days=n)).strftime("%b %d"))
        for n in range(0, days, step)
    ]
    rate_ticks = [Tick(rate_y(n / 4), percent(n / 4)) for n in range(5)]
    count_step = max(count_max // 4, 1)
    count_ticks = [Tick(count_y(n), str(n)) for n in range(0, count_max + 1, count_step)]
    return TrendChart(
        WIDTH,
        HEIGHT,
        LEFT,
        RIGHT,
        TOP,
        BOTTOM,
        chart_days,
        changes,
        count_max,
        x_ticks,
        rate_ticks,
        count_ticks,
        first,
        today,
    )


@dataclass(frozen=True)
class Sparkline:
    points: str
    label: str
    width: int = 120
    height: int = 28


def sparkline(rates: Sequence[float | None], days: int = HISTORY_DAYS) -> Sparkline | None:
    """The overview's pass rate over the last days; None when there is no rate to draw."""
    known = [rate for rate in rates if rate is not None]
    if not known:
        return None
    line = Sparkline("", "")
    offset = days - len(rates)

    def x(index: int) -> float:
        return 2 + (line.width - 4) * (index + offset) / max(days - 1, 1)

    points = " ".join(
        f"{x(index):.1f},{2 + (line.height - 4) * (1 - rate):.1f}"
        for index, rate in enumerate(rates)
        if rate is not None
    )
    label = f"Pass rate over {plural(len(rates), 'day')}: from {percent(known[0])} to {percent(known[-1])}"
    return Sparkline(points, label)
