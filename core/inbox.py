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
from typing import Any, Literal

from tortoise.expressions import F, Q

from core.backoff import BACKOFF, Backoff
from core.clock import utcnow
from core.db import as_moment, connection, db_datetime, execute, fetch_dicts
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
ABANDONED = "abandoned: its worker stopped every attempt"

# A claim is an UPDATE ... RETURNING statement (atomic on its own, so no transaction holds
# SQLite's one writer longer than it): Tortoise's query building cost more than the database.
_CLAIMED_COLUMNS = (
    ", ".join(LISTED)
    + f", LENGTH(payload) AS payload_size, CASE WHEN LENGTH(payload) <= {SMALL_PAYLOAD} THEN payload END AS small_payload"
)
# Claims that ran out: taken over, or failed once their worker stopped `max_attempts` times.
_TAKE_OVER = f"""
UPDATE delivery SET
  status = CASE WHEN attempts >= ? THEN '{DeliveryStatus.FAILED.value}' ELSE '{DeliveryStatus.PROCESSING.value}' END,
  attempts = CASE WHEN attempts >= ? THEN attempts ELSE attempts + 1 END,
  locked_until = CASE WHEN attempts >= ? THEN NULL ELSE {{moment}} END,
  finished_at = CASE WHEN attempts >= ? THEN {{moment}} ELSE finished_at END,
  error = CASE WHEN attempts >= ? THEN '{ABANDONED}' ELSE error END
WHERE id IN (
  SELECT id FROM delivery WHERE status = '{DeliveryStatus.PROCESSING.value}' AND locked_until < {{moment}}{{guid}}
  ORDER BY locked_until LIMIT ?{{lock}}
)
RETURNING {_CLAIMED_COLUMNS}
"""
_TAKE_WAITING = f"""
UPDATE delivery SET status = '{DeliveryStatus.PROCESSING.value}', attempts = attempts + 1, locked_until = {{moment}}
WHERE id IN (
  SELECT id FROM delivery WHERE status = '{DeliveryStatus.PENDING.value}' AND next_attempt_at <= {{moment}}{{guid}}
  ORDER BY next_attempt_at, id LIMIT ?{{lock}}
)
RETURNING {_CLAIMED_COLUMNS}
"""


def _claim_sql(template: str, *, guid: bool, postgres: bool) -> str:
    # Each walks the (status, time, id) index, never sorts the backlog; on PostgreSQL a row
    # another worker is claiming is passed over rather than waited for.
    return template.format(
        guid=" AND guid = ?" if guid else "",
        lock=" FOR UPDATE SKIP LOCKED" if postgres else "",
        # PostgreSQL cannot tell a parameter's type inside CASE.
        moment="?::timestamptz" if postgres else "?",
    )


_ACCEPT = """
INSERT INTO delivery (
  guid, event, action, repository, installation_id, payload, status, attempts, received_at, next_attempt_at,
  finished_at, note
)
VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
ON CONFLICT (guid) DO NOTHING
RETURNING id
"""


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
    ignored: str | None = None,
    now: datetime | None = None,
) -> Intake:
    """Store a verified delivery; a GUID seen before is processed again only if it never succeeded.

    GitHub redelivers with the same GUID, and only when asked to: a redelivery of a
    failed or unfinished delivery is a request to try again, not a duplicate. A delivery
    known to ask nothing (no handler takes it) is stored `ignored`, with `ignored` its note,
    and no worker sees it.
    """
    now = now or utcnow()
    at = db_datetime(now)
    status, finished_at = (DeliveryStatus.PENDING, None) if ignored is None else (DeliveryStatus.IGNORED, at)
    stored = await fetch_dicts(
        connection(),
        _ACCEPT,
        [
            guid,
            event,
            action,
            repository,
            installation_id,
            payload,
            status.value,
            at,
            at,
            finished_at,
            _detail(ignored),
        ],
    )
    if stored:
        return Intake("accepted", stored[0]["id"])
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
    client = connection()
    postgres = client.capabilities.dialect == "postgres"
    at, until, most = db_datetime(now), db_datetime(now + lease), backoff.max_attempts
    named = [guid] if guid is not None else []
    # Claims that ran out first (few: at most one per worker), then waiting ones in arrival order.
    taken_over = await fetch_dicts(
        client,
        _claim_sql(_TAKE_OVER, guid=guid is not None, postgres=postgres),
        [most, most, most, until, most, at, most, at, *named, limit],
    )
    claimed = [row for row in taken_over if row["status"] == DeliveryStatus.PROCESSING.value]
    claimed.sort(key=lambda row: row["id"])
    if len(claimed) < limit:
        waiting = await fetch_dicts(
            client,
            _claim_sql(_TAKE_WAITING, guid=guid is not None, postgres=postgres),
            [until, at, *named, limit - len(claimed)],
        )
        claimed += sorted(waiting, key=lambda row: (as_moment(row["next_attempt_at"]), row["id"]))
    return [_claimed(row) for row in claimed]


def _claimed(row: dict[str, Any]) -> Delivery:
    delivery = Delivery._init_from_db(**row)
    delivery.payload_size = row["payload_size"]
    delivery.small_payload = row["small_payload"]
    return delivery


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


_FINISH = f"""
UPDATE delivery SET status = ?, note = ?, error = NULL, locked_until = NULL, finished_at = ?
WHERE id = ? AND status = '{DeliveryStatus.PROCESSING.value}' AND attempts = ?
"""


async def finish(
    delivery: Delivery,
    status: Literal[DeliveryStatus.DONE, DeliveryStatus.IGNORED],
    note: str | None = None,
    now: datetime | None = None,
) -> bool:
    # As raw SQL, like the claim: once per delivery, and Tortoise's update cost more than it.
    finished = await execute(
        connection(),
        _FINISH,
        [status.value, _detail(note), db_datetime(now or utcnow()), delivery.id, delivery.attempts],
    )
    return finished > 0


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
