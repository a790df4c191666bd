"""The delivery inbox: accepted webhooks wait here until a worker has processed them.

A delivery is stored before it is answered and finished only after its handler
succeeded, so a process that dies in between loses nothing: the next worker finds
it pending, or processing with a claim that ran out. Workers claim deliveries with
row locks (SKIP LOCKED on PostgreSQL; on SQLite the write lock taken by every
transaction serialises claims), never with anything held only in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, RawSQL
from tortoise.functions import Length
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from core.backoff import BACKOFF, Backoff
from core.clock import utcnow
from core.db import dialect
from core.enums import FINISHED_DELIVERY, DeliveryStatus
from core.models import Delivery
from core.wording import clip

IntakeResult = Literal["accepted", "duplicate", "requeued", "queued"]

# What a listing shows of a delivery: everything but its payload, which may be megabytes.
LISTED = (
    "id", "guid", "event", "action", "repository", "installation_id", "status", "attempts",
    "next_attempt_at", "locked_until", "received_at", "finished_at", "error", "note",
)  # fmt: skip


# Payloads up to this many characters are read with their claim, saving a statement per
# delivery; a larger one waits until its worker has the memory for it (the web process's budget).
SMALL_PAYLOAD = 1024 * 1024
_SMALL_PAYLOAD = RawSQL(f"CASE WHEN LENGTH(payload) <= {SMALL_PAYLOAD} THEN payload END")


@dataclass(frozen=True)
class Intake:
    result: IntakeResult
    delivery_id: int

    @property
    def duplicate(self) -> bool:
        return self.result == "duplicate"


async def accept(
    guid: str,
    event: str,
    payload: str,
    *,
    action: str | None = None,
    repository: str | None = None,
    installation_id: int | None = None,
    now: datetime | None = None,
) -> Intake:
    """Store a verified delivery; a GUID seen before is processed again only if it never succeeded.

    GitHub redelivers with the same GUID, and only when asked to: a redelivery of a
    failed or unfinished delivery is a request to try again, not a duplicate.
    """
    now = now or utcnow()
    try:
        delivery = await Delivery.create(
            guid=guid,
            event=event,
            action=action,
            repository=repository,
            installation_id=installation_id,
            payload=payload,
            received_at=now,
            next_attempt_at=now,
        )
        return Intake("accepted", delivery.id)
    except IntegrityError:
        pass
    existing = await Delivery.get(guid=guid)
    if existing.status in FINISHED_DELIVERY:
        return Intake("duplicate", existing.id)
    if existing.status is DeliveryStatus.FAILED:
        requeued = await Delivery.filter(id=existing.id, status=DeliveryStatus.FAILED).update(
            status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, finished_at=None
        )
        if requeued:
            return Intake("requeued", existing.id)
    return Intake("queued", existing.id)


async def claim(
    limit: int = 1,
    *,
    lease: timedelta = timedelta(seconds=60),
    guid: str | None = None,
    backoff: Backoff = BACKOFF,
    now: datetime | None = None,
) -> list[Delivery]:
    """Take up to `limit` deliveries that are due, oldest first, for `lease`; each goes to one worker only.

    A payload up to SMALL_PAYLOAD characters comes with its claim; a larger one is read by
    `payload()` (`payload_size` says how long it is).

    A delivery whose claims ran out `backoff.max_attempts` times (its process died each
    time, say from what the delivery itself asks) is marked failed instead of taken.
    """
    now = now or utcnow()
    async with in_transaction() as client:

        def due(condition: Q, *order: str) -> QuerySet[Delivery]:
            # A large payload stays behind: the worker reads it when it has room for it.
            query = (
                Delivery.filter(condition)
                .using_db(client)
                .annotate(payload_size=Length("payload"), small_payload=_SMALL_PAYLOAD)
                .only(*LISTED)
            )
            if guid is not None:
                query = query.filter(guid=guid)
            if dialect() == "postgres":
                query = query.select_for_update(skip_locked=True)
            return query.order_by(*order)

        # Claims that ran out first (few: at most one per worker), then waiting ones in
        # arrival order; each query walks the (status, time, id) index, never sorts the backlog.
        expired = await due(Q(status=DeliveryStatus.PROCESSING, locked_until__lt=now), "locked_until").limit(limit)
        abandoned = [delivery.id for delivery in expired if delivery.attempts >= backoff.max_attempts]
        if abandoned:
            await (
                Delivery.filter(id__in=abandoned)
                .using_db(client)
                .update(
                    status=DeliveryStatus.FAILED,
                    locked_until=None,
                    finished_at=now,
                    error="abandoned: its worker stopped every attempt",
                )
            )
        deliveries = [delivery for delivery in expired if delivery.id not in abandoned]
        if len(deliveries) < limit:
            deliveries += await due(
                Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now), "next_attempt_at", "id"
            ).limit(limit - len(deliveries))
        if not deliveries:
            return []
        await (
            Delivery.filter(id__in=[delivery.id for delivery in deliveries])
            .using_db(client)
            .update(status=DeliveryStatus.PROCESSING, attempts=F("attempts") + 1, locked_until=now + lease)
        )
    for delivery in deliveries:
        delivery.status = DeliveryStatus.PROCESSING
        delivery.attempts += 1
        delivery.locked_until = now + lease
    return deliveries


async def payload(delivery: Delivery) -> str:
    """The payload of a delivery `claim` gave."""
    small: str | None = delivery.small_payload  # type: ignore[attr-defined]
    if small is not None:
        return small
    stored = await Delivery.get(id=delivery.id).values_list("payload", flat=True)
    return str(stored)


def _held(delivery: Delivery) -> Q:
    # The claim is ours only while nobody took it over after our lease ran out.
    return Q(id=delivery.id, status=DeliveryStatus.PROCESSING, attempts=delivery.attempts)


async def extend(delivery: Delivery, lease: timedelta, now: datetime | None = None) -> bool:
    """Keep the claim on a delivery whose handler is still at work; False if it was lost."""
    until = (now or utcnow()) + lease
    return bool(await Delivery.filter(_held(delivery)).update(locked_until=until))


# An outcome's note or error is for a person to read: a hostile payload's values quoted in it
# are cut short, and NUL (which PostgreSQL cannot store) is dropped.
MAX_DETAIL = 2000


def _detail(text: str | None) -> str | None:
    if text is None:
        return None
    return clip(text.replace("\x00", ""), MAX_DETAIL)


async def finish(
    delivery: Delivery,
    status: Literal[DeliveryStatus.DONE, DeliveryStatus.IGNORED],
    note: str | None = None,
    now: datetime | None = None,
) -> bool:
    return bool(
        await Delivery.filter(_held(delivery)).update(
            status=status, note=_detail(note), error=None, locked_until=None, finished_at=now or utcnow()
        )
    )


async def fail(
    delivery: Delivery,
    error: str,
    *,
    backoff: Backoff,
    permanent: bool = False,
    now: datetime | None = None,
) -> DeliveryStatus:
    """Record a failed attempt: try again later, or mark it failed once retries are spent."""
    now = now or utcnow()
    if permanent or backoff.exhausted(delivery.attempts):
        status, changes = DeliveryStatus.FAILED, {"finished_at": now}
    else:
        status, changes = DeliveryStatus.PENDING, {"next_attempt_at": now + backoff.delay(delivery.attempts)}
    await Delivery.filter(_held(delivery)).update(status=status, error=_detail(error), locked_until=None, **changes)
    return status


async def release(delivery: Delivery, now: datetime | None = None) -> None:
    """Give an unfinished claim back (the process is stopping): due at once, the attempt not counted."""
    await Delivery.filter(_held(delivery)).update(
        status=DeliveryStatus.PENDING, attempts=F("attempts") - 1, locked_until=None, next_attempt_at=now or utcnow()
    )


class ReplayRefused(ValueError):
    """A delivery that cannot be replayed now (unknown, or being processed)."""


async def replay(guid: str, now: datetime | None = None) -> Delivery:
    """Queue a stored delivery to run again from its first attempt, whatever its state."""
    now = now or utcnow()
    delivery = await Delivery.get_or_none(guid=guid)
    if delivery is None:
        raise ReplayRefused(f"no delivery {guid}")
    if delivery.status is DeliveryStatus.PROCESSING and delivery.locked_until and delivery.locked_until > now:
        raise ReplayRefused(f"delivery {guid} is being processed right now; try again when it is finished")
    # Only the state read above is reset: a worker that claimed it since keeps it.
    reset = await Delivery.filter(id=delivery.id, status=delivery.status, attempts=delivery.attempts).update(
        status=DeliveryStatus.PENDING, attempts=0, next_attempt_at=now, locked_until=None, finished_at=None
    )
    if not reset:
        raise ReplayRefused(f"delivery {guid} was just taken by a worker; try again when it is finished")
    await delivery.refresh_from_db()
    return delivery


async def recent(status: DeliveryStatus | None = None, limit: int = 50) -> list[Delivery]:
    query = Delivery.all() if status is None else Delivery.filter(status=status)
    return await query.only(*LISTED).order_by("-id").limit(limit)


async def counts() -> dict[DeliveryStatus, int]:
    found = {status: 0 for status in DeliveryStatus}
    for status in DeliveryStatus:
        found[status] = await Delivery.filter(status=status).count()
    return found
