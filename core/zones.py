"""Time zones as people write them: IANA names in any case, checked, with the nearest names
when misspelt. Apart from core.schedule so that the settings and the policy check a zone
without loading the digests' schedules."""

from __future__ import annotations

import difflib
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

ZONE_SUGGESTIONS = 3


class ScheduleError(ValueError):
    """A schedule or a time zone that cannot be: said so that a person can fix what they typed."""


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
    raise ScheduleError(f"“{name}” is not a time zone; the nearest are {', '.join(nearest_zones(name))}")


def nearest_zones(name: str) -> list[str]:
    """The zone names closest to a misspelt one: the whole name, and the city alone."""
    zones = sorted(available_timezones())
    by_city = {zone.rpartition("/")[2].lower(): zone for zone in zones}
    city = name.rpartition("/")[2].lower()
    close = [by_city[found] for found in difflib.get_close_matches(city, list(by_city), n=ZONE_SUGGESTIONS, cutoff=0.8)]
    close += difflib.get_close_matches(name, zones, n=ZONE_SUGGESTIONS, cutoff=0.0)
    return list(dict.fromkeys(close))[:ZONE_SUGGESTIONS]


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
