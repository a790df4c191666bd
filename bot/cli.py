"""`milestones clock`, declared for the core CLI; `bot/clock.py` (Slack, APScheduler, charts)
is imported only when the clock runs."""

from __future__ import annotations

from typing import Any


def add_clock(commands: Any) -> None:
    command = commands.add_parser("clock", help="run the clock process: scheduled digests in Slack")
    command.set_defaults(handler="bot.clock:cmd_clock")
