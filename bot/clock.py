"""`milestones clock`: the process that posts scheduled digests.

APScheduler runs one job per subscription, on a trigger computed from the subscription's
own calendar (core.schedule), and the jobs follow the database: a subscription added in
Slack is scheduled within `SYNC_EVERY`, a removed one unscheduled. Each fire is claimed in
the database before it is posted, so two clocks, or a restart, never post it twice. A claim
is a lease, renewed while the digest is posted: when a clock dies holding one, another clock
(or the same one restarted) takes the fire over within the grace, after checking that the
digest is not in the channel already, and records it as missed beyond the grace.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.digests import Digests
from bot.slack_api import retry_handlers
from core import digests
from core.backoff import BACKOFF, Backoff
from core.cli import UsageError
from core.clock import utcnow
from core.db import close_database, note_failure, open_database
from core.leases import renewed
from core.models import DigestRun
from core.schedule import Schedule
from core.settings import get_settings

log = logging.getLogger("milestones.clock")

SYNC_EVERY = timedelta(seconds=30)


class ScheduleTrigger(BaseTrigger):
    """APScheduler's trigger for a digest schedule: fire times from core.schedule."""

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        after = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        return self.schedule.next_fire(after)

    def __str__(self) -> str:
        return self.schedule.describe()


class Clock:
    def __init__(
        self,
        poster: Digests,
        *,
        grace: timedelta,
        lease: timedelta = timedelta(seconds=60),
        now: Callable[[], datetime] = utcnow,
        backoff: Backoff = BACKOFF,
    ):
        self.poster = poster
        self.grace = grace
        self.lease = lease
        self.now = now
        self.backoff = backoff
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduled: dict[int, digests.SubscriptionView] = {}

    async def start(self) -> None:
        # Scheduled first, then caught up: a fire due while catching up is the scheduler's,
        # one due before it started is the catch-up's, and one due in between is both's,
        # which the claim makes one.
        await self.sync()
        self.scheduler.add_job(self.sync, "interval", seconds=SYNC_EVERY.total_seconds(), id="sync", coalesce=True)
        # Claims left by a clock that died are looked for twice per lease.
        self.scheduler.add_job(
            self.recover, "interval", seconds=self.lease.total_seconds() / 2, id="recover", coalesce=True
        )
        self.scheduler.start()
        await self.catch_up()
        await self.recover()

    @property
    def scheduled(self) -> int:
        return len(self._scheduled)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    async def sync(self) -> None:
        """Schedule what the database holds: new subscriptions added, changed ones rescheduled, removed ones dropped."""
        current = {view.id: view for view in await digests.every_subscription()}
        for subscription_id in set(self._scheduled) - set(current):
            self.scheduler.remove_job(f"digest:{subscription_id}")
            del self._scheduled[subscription_id]
        for subscription_id, view in current.items():
            known = self._scheduled.get(subscription_id)
            if known is not None and known.schedule == view.schedule:
                continue
            self.scheduler.add_job(
                self.fire,
                ScheduleTrigger(view.schedule),
                # The job's own schedule names the fire it claims, whatever the database says by then.
                args=[subscription_id, None, view.schedule],
                id=f"digest:{subscription_id}",
                replace_existing=True,
                # Late by up to the grace (a busy loop, a slow start): sent once; later, skipped.
                misfire_grace_time=int(self.grace.total_seconds()),
                coalesce=True,
            )
            self._scheduled[subscription_id] = view
            log.info("digest %s of %s scheduled %s", subscription_id, view.scope, view.schedule.describe())

    async def catch_up(self) -> int:
        """After downtime: each subscription's latest fire within the grace is sent, if no clock sent it."""
        now = self.now()
        sent = 0
        for view in await digests.every_subscription():
            missed = list(view.schedule.fires(now - self.grace, now))
            if missed and await self.fire(view.id, missed[-1], view.schedule):
                sent += 1
        return sent

    async def recover(self) -> int:
        """Fires whose clock stopped renewing its claim (it died while posting): taken over and
        posted once within the grace, recorded as missed beyond it. Returns how many were posted."""
        posted = 0
        try:
            expired = await digests.expired_claims()
        except Exception as error:
            if not note_failure(error):
                log.exception("could not look for digests left unposted")
            return 0
        for run in expired:
            if self.now() - run.scheduled_for > self.grace:
                minutes = round(self.grace.total_seconds() / 60)
                reason = f"its clock stopped while posting it; found after the {minutes}-minute grace"
                if await digests.mark_missed(run, reason):
                    log.error("digest %s for %s missed: %s", run.subscription_id, run.scheduled_for, reason)
            elif await self.fire(run.subscription_id, run.scheduled_for):
                posted += 1
        return posted

    async def fire(
        self, subscription_id: int, scheduled_for: datetime | None = None, schedule: Schedule | None = None
    ) -> bool:
        """Post one fire's digest, unless another clock claimed it; True when this one posted it.

        `schedule`: the one the fire was computed from; a subscription changed since is not
        posted on the old schedule (the next sync schedules the new one)."""
        try:
            view = await digests.find_subscription(subscription_id)
            if view is None or (schedule is not None and schedule != view.schedule):
                return False  # removed or rescheduled since this fire was planned
            scheduled_for = scheduled_for or view.schedule.last_fire(self.now())
            claim = await digests.claim_fire(subscription_id, scheduled_for, lease=self.lease)
        except Exception as failure:
            if not note_failure(failure):
                log.exception("digest %s: could not be claimed", subscription_id)
            return False
        if claim is None:
            return False
        if claim.taken_over:
            log.warning(
                "digest %s for %s: taken over from a clock that stopped while posting it",
                subscription_id,
                scheduled_for,
            )
        run = claim.run
        async with renewed(self.lease, lambda: digests.renew_claim(run, self.lease), f"digest {subscription_id}"):
            return await self._post(view, run, scheduled_for, look_first=claim.taken_over)

    async def _post(
        self, view: digests.SubscriptionView, run: DigestRun, scheduled_for: datetime, *, look_first: bool
    ) -> bool:
        """Post the claimed fire, trying again with back-off. `look_first`: the digest may be in
        the channel already (a clock that died after posting it, an answer lost on the way)."""
        subscription_id = view.id
        error = ""
        attempts = self.backoff.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                posted = await self.poster.post(view, scheduled_for, look_first=look_first or attempt > 1)
            except asyncio.CancelledError:
                raise
            except Exception as failure:
                error = (
                    f"Slack: {failure.response.get('error')}"
                    if isinstance(failure, SlackApiError)
                    else f"{type(failure).__name__}: {failure}"
                )
                log.warning("digest %s for %s: attempt %d failed: %s", subscription_id, scheduled_for, attempt, error)
                if attempt < attempts:
                    await asyncio.sleep(self.backoff.delay(attempt).total_seconds())
                continue
            await digests.finish_fire(run, digests.SENT, attempts=attempt, reported=posted.reported)
            if posted.found:
                log.info(
                    "digest %s for %s was in %s already; not posted again",
                    subscription_id,
                    scheduled_for,
                    view.channel_id,
                )
                return True
            log.info("digest %s for %s posted in %s", subscription_id, scheduled_for, view.channel_id)
            # After the claim is closed: a chart that fails never posts the digest again.
            await self.poster.charts(view.channel_id, posted)
            return True
        await digests.finish_fire(run, digests.FAILED, attempts=attempts, error=error)
        log.error("digest %s for %s failed after %d attempts: %s", subscription_id, scheduled_for, attempts, error)
        return False


async def cmd_clock(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.slack_bot_token is None:
        raise UsageError("the clock posts digests to Slack: set SLACK_BOT_TOKEN")
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=settings.slack_api_url,
        retry_handlers=retry_handlers(),
    )
    clock = Clock(
        Digests(client, settings.slack_command, settings.tz),
        grace=timedelta(minutes=settings.digest_grace_minutes),
        lease=timedelta(seconds=settings.digest_lease_seconds),
    )
    # APScheduler tells every job it adds and runs at INFO: ours are logged as they happen.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # Open for the whole process: the scheduler's jobs run outside this task.
    await open_database(settings.database_url)
    try:
        await clock.start()
        minutes = round(clock.grace.total_seconds() / 60)
        log.info("clock: %d digests scheduled; a missed one is sent up to %d min late", clock.scheduled, minutes)
        await stopping.wait()
        clock.stop()
    finally:
        await close_database()
    return 0
