"""Words for people, the same in every medium: counts, days, percentages, cut text, short lists.

Plain text without markup: each renderer (the terminal, check runs' Markdown, the milestone
page's HTML, Slack's mrkdwn) escapes it for its own medium.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

ELLIPSIS = "…"
SHORT_SHA = 7


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`3 tests`, `1 test`, `1,200 tests`; `nouns` where adding an s is wrong."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def days(count: int) -> str:
    return plural(count, "day")


def days_left(count: int) -> str:
    """How far the target date is: `7 days left`, `due today`, `3 days ago`."""
    if count == 0:
        return "due today"
    return f"{days(count)} left" if count > 0 else f"{days(-count)} ago"


def percent(ratio: float | None) -> str:
    """`95%`, `97.5%`; `n/a` without a ratio."""
    if ratio is None:
        return "n/a"
    return f"{ratio * 100:.1f}%".replace(".0%", "%")


def progress_bar(ratio: float | None, width: int = 10) -> str:
    if ratio is None:
        return "░" * width
    filled = round(max(0.0, min(1.0, ratio)) * width)
    return "█" * filled + "░" * (width - filled)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, the last an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def clip_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut between characters, the last an ellipsis when cut:
    for limits counted in bytes (GitHub's 64 KB annotation message)."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return encoded[:room].decode("utf-8", "ignore") + ELLIPSIS


def one_line(text: str) -> str:
    """Every run of white space, line breaks included, as one space."""
    return " ".join(text.split())


def first_line(text: str | None) -> str:
    """The first line of a message (a failure's), without the white space around it."""
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def listed(names: Sequence[str], shown: int = 20) -> str:
    """Names for a line of text: the first `shown`, then how many more."""
    more = f" and {len(names) - shown:,} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def short_sha(sha: str) -> str:
    return sha[:SHORT_SHA]


def launch_counts(counts: Mapping[str, int]) -> str:
    """A launch's tally: `24 tests in 3 files: 18 passed, 5 failed, 1 errors, 0 skipped, 2 flaky`."""
    files = counts.get("files", 0)
    return (
        f"{counts.get('tests', 0)} tests in {files} file{'s' if files != 1 else ''}: "
        f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, {counts.get('errors', 0)} errors, "
        f"{counts.get('skipped', 0)} skipped, {counts.get('flaky', 0)} flaky"
    )
