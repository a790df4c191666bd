"""Keeping a claim (a delivery, pull requests to publish) while the work on it runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from core.db import note_failure

log = logging.getLogger("milestones.leases")


@asynccontextmanager
async def renewed(lease: timedelta, renew: Callable[[], Awaitable[bool]], what: str) -> AsyncIterator[None]:
    """Renews every third of the lease while the block runs, until `renew` says nothing is
    held any more; a crashed process stops renewing, so another takes the work over."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(lease.total_seconds() / 3)
            try:
                if not await renew():
                    return
            except Exception as error:
                # A database hiccup: the lease has two more renewals' worth of time left.
                if not note_failure(error):
                    log.warning("could not renew the claim on %s", what, exc_info=True)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        task.cancel()
