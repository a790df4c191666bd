"""Processing accepted deliveries, after they were answered: claim, dispatch, record the outcome.

Only failures that another attempt may get past are retried: the database, the network
or GitHub (5xx, rate limits) being unavailable. Anything else, a payload its handler's
model refuses first of all, fails the delivery at once with the reason;
`milestones deliveries replay GUID` runs it again once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import cast

import httpx
from github import GithubException, RateLimitExceededException

from core import db, inbox
from core.backoff import BACKOFF, Backoff
from core.clock import event_within
from core.enums import STOPPED_INSTALLATION, DeliveryStatus
from core.installations import installation_status
from core.leases import renewed
from core.models import Delivery
from core.settings import Settings
from integrations.github.events import LARGE_DOCUMENT, HandlerContext, Ignored, Unprocessable, WebhookEvent
from integrations.github.handlers import no_handler, router
from integrations.github.intake import PARSE_FACTOR, IntakeTraffic, MemoryBudget, release_memory

log = logging.getLogger(__name__)

# Installation events pass even for a suspended installation: they are what lifts it.
_ALWAYS_ROUTED = {"installation", "installation_repositories", "ping"}


async def dispatch(event: WebhookEvent, context: HandlerContext) -> str | None:
    """Run the event's handlers; returns a note for the record. Raises Ignored when none applies."""
    callbacks = router.fetch(event)
    if not callbacks:
        raise Ignored(no_handler(event.event, event.action))
    installation = event.installation_id
    if event.event not in _ALWAYS_ROUTED and installation is not None:
        status = await installation_status(installation)
        if status in STOPPED_INSTALLATION:
            raise Ignored(f"installation {installation} is {status.value}")
    notes = []
    for callback in callbacks:
        # Our handlers return a note (integrations.github.events.on).
        note = cast(str | None, await callback(event, context))
        if note:
            notes.append(note)
    return "; ".join(notes) or None


def transient(error: BaseException) -> bool:
    """Whether another attempt may succeed: the database, the network or GitHub was unavailable."""
    if db.transient(error):  # the network's errors are OSErrors too
        return True
    if isinstance(error, httpx.TransportError | RateLimitExceededException):
        return True
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500 or error.response.status_code == 429
    if isinstance(error, GithubException):
        message = error.data.get("message", "") if isinstance(error.data, dict) else str(error.data)
        return error.status >= 500 or error.status == 429 or (error.status == 403 and "rate limit" in message)
    return False


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
        # Shared with intake in the web process: a large payload waits for its parse's memory,
        # and each delivery waits for the requests being answered.
        self.memory: MemoryBudget | None = None
        self.intake: IntakeTraffic | None = None

    def wake(self) -> None:
        """A delivery was just accepted: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                worked = await self.process_next() is not None
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # The database is away: keep the process up and look again later; the
                # outage is logged once, not at every poll.
                if not db.note_failure(error):
                    log.exception("could not claim a delivery")
                worked = False
            if not worked:
                await event_within(self._wake, self.poll_seconds)
                self._wake.clear()

    async def process_next(self, guid: str | None = None) -> DeliveryStatus | None:
        """Claim and process one due delivery (the given one, if named); None when there is none."""
        if self.intake is not None:
            await self.intake.quiet()
        claimed = await inbox.claim(lease=self.lease, guid=guid, backoff=self.backoff)
        db.reachability.recovered()
        if not claimed:
            return None
        status = await self.process(claimed[0])
        if claimed[0].payload_size > LARGE_DOCUMENT:  # type: ignore[attr-defined]
            release_memory()  # what its payload and its parse took is freed by now
        return status

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

        size: int = delivery.payload_size  # type: ignore[attr-defined]
        memory = (
            self.memory.share(size * PARSE_FACTOR, wait=None)
            if self.memory is not None and size > LARGE_DOCUMENT
            else contextlib.nullcontext()
        )
        async with renewed(self.lease, renew, f"delivery {delivery.guid}"), memory:
            event = WebhookEvent(
                delivery.event,
                action=delivery.action,
                guid=delivery.guid,
                payload=await inbox.payload(delivery),
                installation_id=delivery.installation_id,
            )
            try:
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
                detail = f"{type(error).__name__}: {error}"
                if transient(error):
                    log.debug("delivery %s failed", delivery.guid, exc_info=True)
                    status = await inbox.fail(delivery, detail, backoff=self.backoff)
                else:
                    # Not the payload's fault, so likely ours: the traceback says where.
                    log.exception("delivery %s failed, not to be retried", delivery.guid)
                    status = await inbox.fail(delivery, detail, backoff=self.backoff, permanent=True)
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
            attempts = f"{delivery.attempts} attempt" + ("s" if delivery.attempts != 1 else "")
            log.error("%s failed after %s, not to be retried: %s", what, attempts, detail)
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
