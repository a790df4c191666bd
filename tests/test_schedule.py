"""Digest schedules: fire times per time zone, across daylight-saving changes, and the words that make them."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from core.schedule import Schedule, ScheduleError, parse_schedule

UTC = UTC


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_daily_weekdays_and_weekly_fire_at_the_local_time() -> None:
    daily = Schedule("daily", time(9, 0), "Europe/Berlin")
    assert daily.next_fire(utc(2026, 11, 24, 7, 59)) == utc(2026, 11, 24, 8, 0)
    assert daily.next_fire(utc(2026, 11, 24, 8, 0)) == utc(2026, 11, 25, 8, 0), "strictly after"
    weekdays = Schedule("weekdays", time(9, 0), "America/New_York")
    # Friday 27 Nov 2026 at 15:00 UTC is 10:00 in New York: next is Monday 09:00 EST.
    assert weekdays.next_fire(utc(2026, 11, 27, 15, 0)) == utc(2026, 11, 30, 14, 0)
    weekly = Schedule("weekly", time(8, 30), "Asia/Tokyo", weekday=0)
    assert weekly.next_fire(utc(2026, 11, 24, 0, 0)) == utc(2026, 11, 29, 23, 30)  # Mon 30 Nov 08:30 JST


def test_spring_forward_fires_once_at_the_moment_the_skipped_time_would_be() -> None:
    # Europe/Berlin skips 02:00-03:00 on 29 March 2026.
    early = Schedule("daily", time(2, 30), "Europe/Berlin")
    fires = list(early.fires(utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)))
    assert fires == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]
    assert fires[1].astimezone(early_zone()).strftime("%H:%M %Z") == "03:30 CEST"
    nine = Schedule("daily", time(9, 0), "Europe/Berlin")
    assert list(nine.fires(utc(2026, 3, 28, 9), utc(2026, 3, 30, 9))) == [
        utc(2026, 3, 29, 7, 0),
        utc(2026, 3, 30, 7, 0),
    ]


def test_fall_back_fires_a_repeated_time_once() -> None:
    # Europe/Berlin repeats 02:00-03:00 on 25 October 2026.
    early = Schedule("daily", time(2, 30), "Europe/Berlin")
    fires = list(early.fires(utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)))
    assert fires == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # New York: 1 November 2026, 01:30 happens twice.
    ny = Schedule("daily", time(1, 30), "America/New_York")
    assert list(ny.fires(utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))) == [
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 2, 6, 30),
    ]


def early_zone():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("words", "expected", "rest"),
    [
        ([], ("daily", time(9, 0), "UTC", None), []),
        (["v2.0"], ("daily", time(9, 0), "UTC", None), ["v2.0"]),
        (["v2.0", "weekdays", "08:15"], ("weekdays", time(8, 15), "UTC", None), ["v2.0"]),
        (
            ["acme/shop", "weekly", "Monday", "7:05", "europe/berlin"],
            ("weekly", time(7, 5), "Europe/Berlin", 0),
            ["acme/shop"],
        ),
        (["Sprint", "24", "daily", "utc"], ("daily", time(9, 0), "UTC", None), ["Sprint", "24"]),
        (["acme/shop"], ("daily", time(9, 0), "UTC", None), ["acme/shop"]),
        (["2.0", "US/Eastern"], ("daily", time(9, 0), "US/Eastern", None), ["2.0"]),
        (["v2.0", "9am"], ("daily", time(9, 0), "UTC", None), ["v2.0"]),
        (["v2.0", "9:30pm", "Europe/Berlin"], ("daily", time(21, 30), "Europe/Berlin", None), ["v2.0"]),
        (["v2.0", "weekdays", "21h"], ("weekdays", time(21, 0), "UTC", None), ["v2.0"]),
        (["v2.0", "12am"], ("daily", time(0, 0), "UTC", None), ["v2.0"]),
        (["v2.0", "12PM"], ("daily", time(12, 0), "UTC", None), ["v2.0"]),
        (["Sprint", "24", "7:5"], ("daily", time(7, 5), "UTC", None), ["Sprint", "24"]),
    ],
)
def test_schedule_words(words: list[str], expected: tuple, rest: list[str]) -> None:
    schedule, before = parse_schedule(words, "UTC")
    assert (schedule.kind, schedule.at, schedule.zone, schedule.weekday) == expected and before == rest


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["daily", "25:00"], "“25:00” is not a time; write it as 09:00, 9am, 9:30pm or 21h"),
        (
            ["daily", "9:00", "Europe/Berln"],
            "“Europe/Berln” is not a time zone; the nearest are Europe/Berlin, Europe/Belfast, Europe/Helsinki",
        ),
        (["weekly", "funday"], "“funday” is not a day; weekly takes mon, tue, wed, thu, fri, sat or sun"),
        (["weekly"], "weekly needs its day, e.g. `weekly mon`"),
        (["v2.0", "weekly", "09:00"], "weekly needs its day, e.g. `weekly mon`"),
        (["v2.0", "13pm"], "“13pm” is not a time; write it as 09:00, 9am, 9:30pm or 21h"),
        (
            ["v2.0", "weekdays", "25:99", "Mars/Olympus"],
            "“25:99” is not a time; write it as 09:00, 9am, 9:30pm or 21h; "
            "“Mars/Olympus” is not a time zone; the nearest are Asia/Omsk, Asia/Thimphu, Asia/Kuala_Lumpur",
        ),
        (
            ["v2.0", "daily", "08:00", "Europe/Paris", "please"],
            "“please” is not part of a schedule; write it as [daily|weekdays|weekly mon] [time] [zone]",
        ),
    ],
)
def test_bad_schedules_say_what_is_wrong(words: list[str], message: str) -> None:
    with pytest.raises(ScheduleError) as wrong:
        parse_schedule(words, "UTC")
    assert str(wrong.value) == message


def test_a_description_reads_as_typed() -> None:
    assert Schedule("weekly", time(8, 30), "Europe/Berlin", weekday=0).describe() == "every Mon at 08:30 Europe/Berlin"
    assert Schedule("weekdays", time(9, 0), "UTC").describe() == "on weekdays at 09:00 UTC"
