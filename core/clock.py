"""The one clock of the engine: aware UTC, so that every stored time compares with every other;
and the one way its loops wait for news or the time to look again."""

import asyncio
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


async def event_within(event: asyncio.Event, seconds: float) -> bool:
    """Whether `event` is set within `seconds`.

    Not `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as
    the event is set, and a loop cancelled that way (a worker at shutdown) never stops.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
