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
from typing import Literal
from zoneinfo import ZoneInfo

from core.zones import ScheduleError as ScheduleError
from core.zones import check_zone, looks_like_zone

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("daily", "weekdays", "weekly")
DEFAULT_AT = time(9, 0)
# 09:00, 9:30pm, 9am, 9 a.m., 21h, 21h30: the ways people write a time of day.
_CLOCK = re.compile(r"^(?P<hour>\d{1,2})(?:(?::|h)(?P<minute>\d{1,2})?)?\s*(?P<half>[ap])?\.?(?:m\.?)?$", re.IGNORECASE)
CLOCK_FORMS = "09:00, 9am, 9:30pm or 21h"

Kind = Literal["daily", "weekdays", "weekly"]


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


def parse_clock(text: str) -> time:
    found = _CLOCK.match(text.strip())
    hour = minute = -1
    if found:
        hour, minute = int(found["hour"]), int(found["minute"] or 0)
        if found["half"]:
            # 12am is midnight, 12pm noon; 13pm is no time.
            hour = -1 if not 1 <= hour <= 12 else hour % 12 + (12 if found["half"].lower() == "p" else 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ScheduleError(f"“{text}” is not a time; write it as {CLOCK_FORMS}")
    return time(hour, minute)


def looks_like_clock(word: str) -> bool:
    """A time of day, or an attempt at one (`25:99`, `9am`, `21h`): read, or refused with how to
    write it. A bare number or `2.0` is a name."""
    found = _CLOCK.match(word)
    return bool(found) and not word.isdigit()


def parse_schedule(words: list[str], default_zone: str) -> tuple[Schedule, list[str]]:
    """The schedule words after the name (`weekly mon 08:30 Europe/Berlin`), in that order,
    each optional; returns the schedule and the words before them.

    The schedule starts at its first word that is a kind (daily, weekdays, weekly) or a time,
    or is the zone alone at the end. Every word of it must then read as what it stands for:
    the answer says which do not (`25:99 is not a time`), rather than taking them for a name."""
    rest = list(words)
    start = next(
        (index for index, word in enumerate(rest) if word.lower() in KINDS or looks_like_clock(word)),
        len(rest) - 1 if rest and looks_like_zone(rest[-1]) else len(rest),
    )
    schedule_words, rest = rest[start:], rest[:start]
    errors: list[str] = []
    kind: Kind = "daily"
    weekday = None
    at = DEFAULT_AT
    zone = default_zone
    index = 0
    if index < len(schedule_words) and schedule_words[index].lower() in KINDS:
        kind = schedule_words[index].lower()  # type: ignore[assignment]
        index += 1
        if kind == "weekly":
            day = schedule_words[index].lower()[:3] if index < len(schedule_words) else None
            if day is None or looks_like_clock(schedule_words[index]) or looks_like_zone(schedule_words[index]):
                errors.append("weekly needs its day, e.g. `weekly mon`")
            elif day not in DAYS:
                errors.append(
                    f"“{schedule_words[index]}” is not a day; weekly takes mon, tue, wed, thu, fri, sat or sun"
                )
                index += 1
            else:
                weekday = DAYS.index(day)
                index += 1
    if index < len(schedule_words) and looks_like_clock(schedule_words[index]):
        try:
            at = parse_clock(schedule_words[index])
        except ScheduleError as error:
            errors.append(str(error))
        index += 1
    if index < len(schedule_words):
        try:
            zone = check_zone(schedule_words[index])
        except ScheduleError as error:
            errors.append(str(error))
        index += 1
    if index < len(schedule_words):
        errors.append(
            f"“{' '.join(schedule_words[index:])}” is not part of a schedule; "
            "write it as [daily|weekdays|weekly mon] [time] [zone]"
        )
    if errors:
        raise ScheduleError("; ".join(errors))
    if kind == "weekly" and weekday is None:
        raise ScheduleError("weekly needs its day, e.g. `weekly mon`")
    return Schedule(kind, at, zone, weekday), rest
