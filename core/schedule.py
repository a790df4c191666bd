"""When a digest is due: daily, on weekdays or weekly at a local time in an IANA time zone.

Fire times are computed from the calendar in the zone, so they follow daylight saving:
a local time skipped by the spring change fires at the same moment the clock would
have shown it (02:30 becomes 03:30), and one repeated by the autumn change fires once,
at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("daily", "weekdays", "weekly")
DEFAULT_AT = time(9, 0)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

Kind = Literal["daily", "weekdays", "weekly"]


class ScheduleError(ValueError):
    """A schedule that cannot be: said so that a person can fix what they typed."""


@dataclass(frozen=True)
class Schedule:
    kind: Kind
    at: time
    zone: str
    # For weekly: 0 is Monday.
    weekday: int | None = None

    def __post_init__(self) -> None:
        if check_zone(self.zone) != self.zone:
            raise ScheduleError(f"write the zone as {check_zone(self.zone)}")
        if (self.kind == "weekly") != (self.weekday is not None):
            raise ScheduleError("a weekly schedule names its day, and only a weekly one")

    def runs_on(self, day: date) -> bool:
        if self.kind == "weekdays":
            return day.weekday() < 5
        if self.kind == "weekly":
            return day.weekday() == self.weekday
        return True

    def fire_on(self, day: date) -> datetime:
        """The UTC moment of the fire on this local day (see the module's note on daylight saving)."""
        local = datetime.combine(day, self.at).replace(tzinfo=ZoneInfo(self.zone), fold=0)
        return local.astimezone(UTC)

    def next_fire(self, after: datetime) -> datetime:
        """The first fire strictly after `after`."""
        start = after.astimezone(ZoneInfo(self.zone)).date() - timedelta(days=1)
        for offset in range(9):
            day = start + timedelta(days=offset)
            if self.runs_on(day):
                fire = self.fire_on(day)
                if fire > after:
                    return fire
        raise AssertionError("a schedule fires at least once a week")

    def last_fire(self, at_or_before: datetime) -> datetime:
        """The latest fire at or before the moment."""
        fires = list(self.fires(at_or_before - timedelta(days=8), at_or_before))
        return fires[-1]

    def fires(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every fire in (after, until]."""
        fire = self.next_fire(after)
        while fire <= until:
            yield fire
            fire = self.next_fire(fire)

    def describe(self) -> str:
        when = {"daily": "daily", "weekdays": "on weekdays"}.get(
            self.kind
        ) or f"every {DAYS[self.weekday or 0].capitalize()}"
        return f"{when} at {self.at:%H:%M} {self.zone}"


def check_zone(name: str) -> str:
    """The zone's IANA name as spelt there (any case is accepted); ScheduleError when there is none."""
    if name.upper() in ("UTC", "GMT"):
        return "UTC"
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        pass
    same = [zone for zone in available_timezones() if zone.lower() == name.lower()]
    if same:
        return same[0]
    raise ScheduleError(f"“{name}” is not a time zone; write an IANA name such as Europe/Berlin or America/New_York")


def parse_clock(text: str) -> time:
    found = _CLOCK.match(text)
    if not found:
        raise ScheduleError(f"“{text}” is not a time of day; write it as HH:MM, e.g. 09:00")
    return time(int(found.group(1)), int(found.group(2)))


def looks_like_clock(word: str) -> bool:
    """A time of day, or an attempt at one (`9am`, `9:5`): refused with how to write it. A bare
    number or `2.0` is a name."""
    return bool(re.match(r"^\d{1,2}(:\d{1,2}\s*([ap]\.?m\.?)?|\s*[ap]\.?m\.?)$", word, re.IGNORECASE))


# The areas of IANA names: a word that starts with one is meant as a zone, even misspelt.
AREAS = (
    "africa/",
    "america/",
    "antarctica/",
    "arctic/",
    "asia/",
    "atlantic/",
    "australia/",
    "etc/",
    "europe/",
    "indian/",
    "pacific/",
)


def looks_like_zone(word: str) -> bool:
    lowered = word.lower()
    return lowered in ("utc", "gmt") or lowered.startswith(AREAS) or lowered in _zone_names()


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zone.lower() for zone in available_timezones())


def parse_schedule(words: list[str], default_zone: str) -> tuple[Schedule, list[str]]:
    """The schedule words at the end of `words` (`weekly mon 08:30 Europe/Berlin`), in that
    order, each optional; returns the schedule and the words before them."""
    rest = list(words)
    zone = default_zone
    if rest and looks_like_zone(rest[-1]):
        zone = check_zone(rest.pop())
    at = DEFAULT_AT
    if rest and looks_like_clock(rest[-1]):
        at = parse_clock(rest.pop())
    kind: Kind = "daily"
    weekday = None
    if len(rest) >= 2 and rest[-2].lower() == "weekly":
        day = rest.pop().lower()[:3]
        rest.pop()
        if day not in DAYS:
            raise ScheduleError(f"“{day}” is not a day; weekly takes mon, tue, wed, thu, fri, sat or sun")
        kind, weekday = "weekly", DAYS.index(day)
    elif rest and rest[-1].lower() == "weekly":
        raise ScheduleError("weekly needs its day, e.g. `weekly mon`")
    elif rest and rest[-1].lower() in ("daily", "weekdays"):
        kind = rest.pop().lower()  # type: ignore[assignment]
    return Schedule(kind, at, zone, weekday), rest
