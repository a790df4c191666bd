"""Work owed to the outside world, written in the same transaction as the change that owes it.

A change marks its subjects (say, the pull requests whose checks now show an old
verdict); a publisher later claims what has settled and does the work. Marking a
subject that already waits adds nothing but a generation, so a burst of changes
becomes one piece of work, and work marked again while being done is done again
afterwards. Claims are leases, as in the delivery inbox: SKIP LOCKED on PostgreSQL,
SQLite's write lock elsewhere, so two processes never do the same work at once.

Work marked by another process (a CLI ingest, another web process) wakes the runners at
once on PostgreSQL: each mark sends a NOTIFY with its transaction, and `listen_for_marks`
holds a connection that LISTENs. SQLite has no such thing: there the runners poll often.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from core.backoff import BACKOFF, Backoff
from core.clock import event_within, utcnow
from core.db import CONNECT_TIMEOUT, connection, describe, dialect, execute, execute_many, note_failure
from core.leases import renewed
from core.models import Outbox

log = logging.getLogger("milestones.outbox")

# A pull request whose gate checks show a verdict that may be out of date.
PULL_REQUEST_CHECKS = "pull_request_checks"
# A sign-off request whose Slack message may be out of date.
SIGNOFF_REQUEST = "signoff_request"
# A dismissal of an approval (a signoff entry) its approver has not been told of.
SIGNOFF_DISMISSAL = "signoff_dismissal"
# A milestone that completed or reopened, maybe not yet announced in its channels.
MILESTONE_COMPLETION = "milestone_completion"
# A milestone whose state may hold something its channels have not been alerted to.
MILESTONE_ALERTS = "milestone_alerts"
# A milestone with close_on_complete whose GitHub milestone may need closing or reopening.
GITHUB_MILESTONE_STATE = "github_milestone_state"
# A milestone closed, reopened or renamed here whose GitHub milestone may not say so yet.
GITHUB_MILESTONE_EDIT = "github_milestone_edit"
# A clone whose GitHub milestone is still to be created (then recorded as its twin).
GITHUB_MILESTONE_CREATE = "github_milestone_create"


# The PostgreSQL channel a mark is announced on; the payload is its topic.
MARKED_CHANNEL = "milestones_outbox"
# Without notifications (SQLite), how often a runner looks for work marked elsewhere.
SQLITE_POLL_SECONDS = 1.0


_UPSERT = (
    " ON CONFLICT (topic, subject) DO UPDATE SET last_marked_at = excluded.last_marked_at,"
    " generation = outbox.generation + 1, forced = outbox.forced OR excluded.forced,"
    # Somebody asking (Re-evaluate) does not wait out the back-off of earlier failures.
    " not_before = CASE WHEN excluded.forced THEN NULL ELSE outbox.not_before END"
)
_COLUMNS = "INSERT INTO outbox (topic, subject, first_marked_at, last_marked_at, generation, forced, attempts)"


async def mark(
    client: BaseDBAsyncClient, topic: str, subjects: Iterable[int], *, forced: bool = False, now: datetime | None = None
) -> None:
    now = now or utcnow()
    ordered = sorted(set(subjects))
    if not ordered:
        return
    if client.capabilities.dialect == "postgres":
        # One statement for every subject, and the notice with it: delivered when the transaction
        # commits, to every process listening; none if it rolls back.
        await execute(
            client,
            "WITH notified AS (SELECT pg_notify(?, ?))"
            f" {_COLUMNS} SELECT ?, subject, ?, ?, 1, ?, 0 FROM notified, unnest(?::bigint[]) AS subject" + _UPSERT,
            [MARKED_CHANNEL, topic, topic, now, now, forced, ordered],
        )
        return
    await execute_many(
        client,
        f"{_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?)" + _UPSERT,
        [(topic, subject, now, now, 1, forced, 0) for subject in ordered],
    )


@dataclass(frozen=True)
class Settling:
    """When marked work is due: once no mark came for `quiet`, or `longest` after the first."""

    quiet: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(seconds=60)

    def due(self, now: datetime) -> Q:
        return Q(last_marked_at__lte=now - self.quiet) | Q(first_marked_at__lte=now - self.longest)

    def due_at(self, item: Outbox) -> datetime:
        settled = min(item.last_marked_at + self.quiet, item.first_marked_at + self.longest)
        return max(settled, item.not_before or settled, item.locked_until or settled)


def _free(now: datetime) -> Q:
    return (Q(locked_until=None) | Q(locked_until__lt=now)) & (Q(not_before=None) | Q(not_before__lte=now))


async def claim(
    topic: str, *, settling: Settling, lease: timedelta, limit: int = 20, now: datetime | None = None
) -> list[Outbox]:
    """Take up to `limit` settled items of `topic`, oldest first, for `lease`."""
    now = now or utcnow()
    async with in_transaction() as client:
        query = Outbox.filter(_free(now) & settling.due(now), topic=topic).using_db(client)
        if dialect() == "postgres":
            query = query.select_for_update(skip_locked=True)
        items = await query.order_by("first_marked_at", "id").limit(limit)
        if items:
            await Outbox.filter(id__in=[item.id for item in items]).using_db(client).update(locked_until=now + lease)
    for item in items:
        item.locked_until = now + lease
    return items


async def next_due(topic: str, settling: Settling) -> datetime | None:
    """When the earliest waiting item of `topic` becomes due, for a publisher deciding how long to sleep.

    Reads every item: there is at most one per subject (an open pull request).
    """
    items = await Outbox.filter(topic=topic).only(
        "id", "first_marked_at", "last_marked_at", "not_before", "locked_until"
    )
    return min((settling.due_at(item) for item in items), default=None)


def _held(item: Outbox) -> Q:
    return Q(id=item.id, locked_until=item.locked_until)


async def extend(items: list[Outbox], lease: timedelta, now: datetime | None = None) -> list[Outbox]:
    """Keep the claims of work still in progress; returns the items whose claim was lost."""
    until = (now or utcnow()) + lease
    lost = []
    for item in items:
        if await Outbox.filter(_held(item)).update(locked_until=until):
            item.locked_until = until
        else:
            lost.append(item)
    return lost


async def holds(item: Outbox) -> bool:
    return await Outbox.filter(_held(item)).exists()


async def done(item: Outbox, now: datetime | None = None) -> bool:
    """The work is done (or given up): True when the item is gone, False when it was marked
    again meanwhile, and stays as new work."""
    if await Outbox.filter(_held(item), generation=item.generation).delete():
        return True
    await Outbox.filter(_held(item)).update(
        locked_until=None, attempts=0, not_before=None, first_marked_at=now or utcnow()
    )
    return False


async def retry_later(item: Outbox, error: str, at: datetime, *, count: bool = True) -> None:
    """Try again at `at`; `count=False` when the failure was not the work's (a rate limit)."""
    attempts = item.attempts + 1 if count else item.attempts
    await Outbox.filter(_held(item)).update(locked_until=None, not_before=at, attempts=attempts, last_error=error)
    item.attempts = attempts


async def pending(topic: str) -> list[Outbox]:
    return await Outbox.filter(topic=topic).order_by("id")


Handler = Callable[[Outbox], Awaitable["str | None"]]


class Deferred(Exception):
    """Not the work's failure (a rate limit): try again at `until`, without counting an attempt."""

    def __init__(self, until: datetime, reason: str):
        self.until = until
        super().__init__(reason)


class ClaimLost(Exception):
    """Another process took the item over (this one stalled past its lease): leave it to them."""


class Runner:
    """Does the owed work of its topics: each settled item goes to its topic's handler,
    which returns a note for the log; a handler that raises is retried later, backing
    off as `backoff` says, and given up (logged) once its attempts are spent.

    Several processes may each run one: the claims keep them from doing an item twice at once.
    `batch_memo` is what the handlers of one claimed batch may share (say, a verdict
    computed once for many pull requests); `periodic` is work done every so often besides.
    """

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        settling: Settling,
        lease: timedelta = timedelta(minutes=2),
        poll_seconds: float = 30.0,
        backoff: Backoff = BACKOFF,
        batch: int = 20,
        periodic: tuple[timedelta, Callable[[], Awaitable[None]]] | None = None,
    ):
        self.handlers = dict(handlers)
        self.settling = settling
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.backoff = backoff
        self.batch = batch
        self.periodic = periodic
        self.batch_memo: dict[Any, Any] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something was marked: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        last_periodic: datetime | None = None  # due at start: a restart may have skipped it
        while True:
            wait = self.poll_seconds
            try:
                if self.periodic and (last_periodic is None or utcnow() - last_periodic >= self.periodic[0]):
                    await self.periodic[1]()
                    last_periodic = utcnow()
                # A read decides whether to claim: claiming takes SQLite's write lock.
                due = {topic: await next_due(topic, self.settling) for topic in self.handlers}
                now = utcnow()
                ready = [topic for topic, when in due.items() if when is not None and when <= now]
                if ready and await self.drain(topics=ready):
                    continue
                later = [when for when in due.values() if when is not None and when > now]
                if later:
                    wait = min(wait, (min(later) - utcnow()).total_seconds())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not note_failure(error):  # an outage is logged once, not at every poll
                    log.exception("owed work failed: %s", ", ".join(self.handlers))
            await event_within(self._wake, max(wait, 0.05))
            self._wake.clear()

    async def drain(self, now: datetime | None = None, topics: Iterable[str] | None = None) -> int:
        """Do every item that is due (of `topics`, or all); returns how many were taken."""
        taken = 0
        for topic in self.handlers if topics is None else topics:
            handler = self.handlers[topic]
            while items := await claim(topic, settling=self.settling, lease=self.lease, limit=self.batch, now=now):
                held = list(items)
                self.batch_memo = {}
                async with renewed(self.lease, self._renewal(topic, held), f"{topic} work"):
                    for item in items:
                        await self._do(topic, handler, item)
                        if item in held:
                            held.remove(item)  # finished: nothing more to renew
                taken += len(items)
        return taken

    def _renewal(self, topic: str, held: list[Outbox]) -> Callable[[], Awaitable[bool]]:
        """Renews the claims still held (`held` shrinks as items finish); False once none is."""

        async def renew() -> bool:
            for item in await extend(held, self.lease):
                log.warning("%s %s: claim lost to another process", topic, item.subject)
                held.remove(item)
            return bool(held)

        return renew

    async def _do(self, topic: str, handler: Handler, item: Outbox) -> None:
        try:
            note = await handler(item)
        except asyncio.CancelledError:
            raise
        except ClaimLost as lost:
            log.warning("%s %s: %s", topic, item.subject, lost)
        except Deferred as deferred:
            log.warning("%s %s: waits: %s", topic, item.subject, deferred)
            await retry_later(item, str(deferred), deferred.until, count=False)
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            if self.backoff.exhausted(item.attempts + 1):
                log.error("%s %s: given up after %d attempts: %s", topic, item.subject, item.attempts + 1, detail)
                await done(item)  # the next change tries afresh
            else:
                log.warning("%s %s: failed, will retry: %s", topic, item.subject, detail, exc_info=True)
                await retry_later(item, detail, utcnow() + self.backoff.delay(item.attempts + 1))
        else:
            await done(item)
            if note:
                log.info("%s %s: %s", topic, item.subject, note)


# A listener whose connection failed tries again after this; while the database is away,
# the failure is logged once per outage (core.db), not at every try.
LISTEN_RETRY_SECONDS = 5.0
# A silent connection is checked this often: a black-holed network never closes it.
LISTEN_CHECK_SECONDS = 30.0


async def listen_for_marks(on_mark: Callable[[], None]) -> None:
    """Call `on_mark` whenever any process marks work (PostgreSQL only), until cancelled; and
    once each time listening (re)starts, for what was marked while it was not."""
    while True:
        try:
            await _listen(on_mark)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if not note_failure(error):
                log.warning("listening for owed work failed (%s); polling meanwhile", describe(error))
        await asyncio.sleep(LISTEN_RETRY_SECONDS)


async def _listen(on_mark: Callable[[], None]) -> None:
    """One connection's listening, until it is lost."""
    import asyncpg  # here, as only PostgreSQL listens

    client: Any = connection()
    listener = await asyncpg.connect(
        host=client.host,
        port=client.port,
        user=client.user,
        password=client.password,
        database=client.database,
        timeout=CONNECT_TIMEOUT,
    )
    try:
        lost = asyncio.Event()
        listener.add_termination_listener(lambda _: lost.set())
        await listener.add_listener(MARKED_CHANNEL, lambda *_: on_mark())
        on_mark()
        while not lost.is_set():
            await event_within(lost, LISTEN_CHECK_SECONDS)
            if not lost.is_set():
                await asyncio.wait_for(listener.execute("SELECT 1"), CONNECT_TIMEOUT)
        log.info("the connection listening for owed work was closed; listening again")
    finally:
        listener.terminate()  # no goodbye to a server that may not answer
