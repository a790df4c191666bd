"""The trend chart of a digest: pass rate and open blocking defects per day, as a PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: the image is rendered in memory

from matplotlib.figure import Figure  # noqa: E402

from core.history import DayPoint  # noqa: E402

WIDTH, HEIGHT, DPI = 8.0, 3.0, 100  # 800 x 300 pixels


def trend_png(name: str, days: Sequence[DayPoint]) -> bytes | None:
    """None when there is no history to draw (the digest falls back to its text sparkline)."""
    if len(days) < 2:
        return None
    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    rates = figure.add_subplot()
    # Any: matplotlib converts dates and None (a gap) itself; its types take numbers only.
    dates: list[Any] = [point.day for point in days]
    pass_rates: list[Any] = [None if point.pass_rate is None else point.pass_rate * 100 for point in days]
    rates.plot(
        dates,
        pass_rates,
        color="#1a7f37",
        label="pass rate %",
    )
    rates.set_ylim(0, 100)
    rates.set_ylabel("pass rate %")
    defects = rates.twinx()
    defects.step(
        dates, [point.open_blocking for point in days], where="post", color="#cf222e", label="open blocking defects"
    )
    defects.set_ylim(0, max(3, max(point.open_blocking for point in days) + 1))
    defects.set_ylabel("blocking defects")
    rates.set_title(f"{name}: the last {len(days)} days", fontsize=10)
    figure.autofmt_xdate()
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
