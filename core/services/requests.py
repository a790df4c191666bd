"""Sign-off requests: the message in Slack that is the milestone's live request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from core import outbox
from core.catalog import lock_milestones, milestone_named
from core.clock import utcnow
from core.models import SignoffRequest


@dataclass(frozen=True)
class RequestAt:
    """The sign-off request a message shows, and the one that replaced it, if any."""

    request: SignoffRequest
    repository: str
    milestone: str
    live: bool
    replacement: SignoffRequest | None


async def open_signoff_request(
    repository: str,
    milestone_name: str,
    *,
    team_id: str,
    channel_id: str,
    message_ts: str,
    requested_by: str,
    requested_at: datetime | None = None,
    shown_digest: str | None = None,
) -> tuple[SignoffRequest, SignoffRequest | None]:
    """The request just posted becomes the milestone's live one; the one it replaces (returned
    second) is due an update."""
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        old = await SignoffRequest.get_or_none(live_for=milestone.id, using_db=client)
        if old is not None:
            old.live_for = None
            await old.save(using_db=client, update_fields=["live_for"])
        request = await SignoffRequest.create(
            using_db=client,
            milestone=milestone,
            team_id=team_id,
            channel_id=channel_id,
            message_ts=message_ts,
            requested_by=requested_by,
            live_for=milestone.id,
            shown_digest=shown_digest,
            created_at=requested_at or utcnow(),
        )
        if old is not None:
            old.replaced_by = request
            await old.save(using_db=client, update_fields=["replaced_by_id"])
        # The new one too: a decision between its rendering and now marked only the old one.
        await outbox.mark(client, outbox.SIGNOFF_REQUEST, [request.id] + ([old.id] if old else []))
    return request, old


async def signoff_request_at(channel_id: str, message_ts: str) -> RequestAt | None:
    """The request a message shows: Slack's container of a click names the channel and ts."""
    return await _request_where(channel_id=channel_id, message_ts=message_ts)


async def signoff_request(request_id: int) -> RequestAt | None:
    return await _request_where(id=request_id)


async def _request_where(**where: Any) -> RequestAt | None:
    request = await SignoffRequest.get_or_none(**where).prefetch_related("milestone__repository", "replaced_by")
    if request is None:
        return None
    milestone = request.milestone
    return RequestAt(
        request, milestone.repository.full_name, milestone.name, request.live_for is not None, request.replaced_by
    )


async def live_request(milestone_id: int) -> SignoffRequest | None:
    return await SignoffRequest.get_or_none(live_for=milestone_id)


async def request_shown(request_id: int, digest: str) -> None:
    await SignoffRequest.filter(id=request_id).update(shown_digest=digest)
