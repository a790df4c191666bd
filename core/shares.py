"""Share to channel, once: the claim on a shared answer lives in the database, so that every web
process agrees which of two clicks posts it."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError

from core.clock import utcnow
from core.models import SharedAnswer

# A second click on the same answer within this time is the same share (a double click, or
# Slack's retry); later, the answer's message is gone unless the first share failed.
SHARE_WINDOW = timedelta(seconds=60)


def share_key(channel_id: str, message_ts: str, query: str) -> str:
    return hashlib.sha256(f"{channel_id}\n{message_ts}\n{query}".encode()).hexdigest()


async def claim_share(key: str, *, window: timedelta = SHARE_WINDOW, now: datetime | None = None) -> bool:
    """True for the first click to share this answer within `window`; False for any other."""
    now = now or utcnow()
    # Old claims go: the table holds only the last minute's shares.
    await SharedAnswer.filter(shared_at__lt=now - window).delete()
    try:
        await SharedAnswer.create(key=key, shared_at=now)
    except IntegrityError:
        return False
    return True


async def release_share(key: str) -> None:
    """The share failed: a new click may try again at once."""
    await SharedAnswer.filter(key=key).delete()
