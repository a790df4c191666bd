"""Processing accepted deliveries, after they were answered: claim, dispatch, record the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import cast

from gidgethub import sansio

from core import inbox
from core.backoff import BACKOFF, Backoff
from core.enums import STOPPED_INSTALLATION, DeliveryStatus
from core.installations import installation_status
from core.leases import renewed
from core.models import Delivery
from core.settings import Settings
from integrations.github.events import HandlerContext, Ignored, Unprocessable, installation_of
from integrations.github.handlers import router

log = logging.getLogger(__name__)

# Installation events pass even for a suspended installation: they are what lifts it.
_ALWAYS_ROUTED = {"installation", "installation_repositories", "ping"}


async def dispatch(event: sansio.Event, context: HandlerContext) -> str | None:
    """Run the event's handlers; returns a note for the record. Raises Ignored when none applies."""
    callbacks = router.fetch(event)
    if not callbacks:
        action = event.data.get("action")
        raise Ignored(f"no handler for {event.event}" + (f" {action}" if action else ""))
    installation = installation_of(event)
    if event.event not in _ALWAYS_ROUTED and installation is not None:
        status = await installation_status(installation)
        if status in STOPPED_INSTALLATION:
            raise Ignored(f"installation {installation} is {status.value}")
    notes = []
    for callback in callbacks:
        try:
            # Our handlers return a note (integrations.github.events.on).
            note = cast(str | None, await callback(event, context))
        except (KeyError, TypeError) as error:
            raise Unprocessable(f"{event.event} payload lacks what its handler needs ({error!r})") from error
        if note:
            notes.append(note)
    return "; ".join(notes) or None


class DeliveryWorker:
    """Takes deliveries from the inbox until stopped; several may run, in one process or many."""

    def __init__(
        self,
        context: HandlerContext,
        *,
        backoff: Backoff = BACKOFF,
        lease: timedelta = timedelta(seconds=60),
        poll_seconds: float = 2.0,
    ):
        self.context = context
        self.backoff = backoff
        self.lease = lease
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        # Called after each delivery: what it changed may be owed to GitHub (checks to publish).
        self.after_each: Callable[[], None] | None = None

    def wake(self) -> None:
        """A delivery was just accepted: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                worked = await self.process_next() is not None
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database is away, say: keep the process up and look again later.
                log.exception("could not claim a delivery")
                worked = False
            if not worked:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
                self._wake.clear()

    async def process_next(self, guid: str | None = None) -> DeliveryStatus | None:
        """Claim and process one due delivery (the given one, if named); None when there is none."""
        claimed = await inbox.claim(lease=self.lease, guid=guid, backoff=self.backoff)
        if not claimed:
            return None
        return await self.process(claimed[0])

    async def drain(self) -> int:
        """Process every due delivery, one after another; returns how many."""
        count = 0
        while await self.process_next() is not None:
            count += 1
        return count

    async def process(self, delivery: Delivery) -> DeliveryStatus:
        async def renew() -> bool:
            held = await inbox.extend(delivery, self.lease)
            if not held:
                log.warning("delivery %s: claim lost to another worker", delivery.guid)
            return held

        async with renewed(self.lease, renew, f"delivery {delivery.guid}"):
            try:
                event = sansio.Event(json.loads(delivery.payload), event=delivery.event, delivery_id=delivery.guid)
                detail = await dispatch(event, self.context)
            except Ignored as reason:
                detail = str(reason)
                await inbox.finish(delivery, DeliveryStatus.IGNORED, note=detail)
                status = DeliveryStatus.IGNORED
            except Unprocessable as error:
                detail = str(error)
                status = await inbox.fail(delivery, detail, backoff=self.backoff, permanent=True)
            except asyncio.CancelledError:
                await asyncio.shield(inbox.release(delivery))
                raise
            except Exception as error:
                log.debug("delivery %s failed", delivery.guid, exc_info=True)
                detail = f"{type(error).__name__}: {error}"
                status = await inbox.fail(delivery, detail, backoff=self.backoff)
            else:
                await inbox.finish(delivery, DeliveryStatus.DONE, note=detail)
                status = DeliveryStatus.DONE
        self._log(delivery, status, detail)
        if self.after_each is not None:
            self.after_each()
        return status

    @staticmethod
    def _log(delivery: Delivery, status: DeliveryStatus, detail: str | None) -> None:
        what = f"delivery {delivery.guid} {delivery.event}" + (f".{delivery.action}" if delivery.action else "")
        if delivery.repository:
            what += f" {delivery.repository}"
        if status is DeliveryStatus.FAILED:
            log.error("%s failed after %d attempts: %s", what, delivery.attempts, detail)
        elif status is DeliveryStatus.PENDING:
            log.warning("%s failed (attempt %d), will retry: %s", what, delivery.attempts, detail)
        else:
            log.info("%s: %s%s", what, status.value, f" ({detail})" if detail else "")


def worker_for(context: HandlerContext, settings: Settings) -> DeliveryWorker:
    return DeliveryWorker(
        context,
        backoff=Backoff(
            first_delay=timedelta(seconds=settings.webhook_retry_seconds), max_attempts=settings.webhook_max_attempts
        ),
        lease=timedelta(seconds=settings.webhook_lease_seconds),
    )
