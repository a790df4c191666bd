"""core.clock.event_within: the loops' wait for news, which a cancellation always ends."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from core.clock import event_within


async def poll_forever(event: asyncio.Event, wait) -> None:
    while True:
        await wait(event)
        event.clear()


async def cancelled_as_the_event_is_set(wait) -> asyncio.Task[None]:
    event = asyncio.Event()
    task = asyncio.create_task(poll_forever(event, wait))
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 1.0)
    return task


async def test_a_loop_cancelled_as_its_event_is_set_stops():
    task = await cancelled_as_the_event_is_set(lambda event: event_within(event, 5.0))
    assert task.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for is built on asyncio.timeout from Python 3.12")
async def test_asyncio_wait_for_would_have_kept_it_running():
    # What event_within is for: Python 3.11's wait_for returns the result of an inner wait that
    # finished as the cancellation came, and the loop goes on.
    async def wait_for(event: asyncio.Event) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), 5.0)

    task = await cancelled_as_the_event_is_set(wait_for)
    try:
        assert not task.done()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_event_set_in_time_or_not():
    event = asyncio.Event()
    assert await event_within(event, 0.01) is False
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await event_within(event, 5.0) is True
