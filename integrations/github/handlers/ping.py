"""`ping`: GitHub's hello when a webhook is created."""

from __future__ import annotations

import logging

from gidgethub import routing

from integrations.github.events import Envelope, HandlerContext, Text, WebhookEvent, on

log = logging.getLogger(__name__)
router = routing.Router()


class PingEvent(Envelope):
    hook_id: int | None = None
    zen: Text | None = None


@on(router, "ping")
async def ping(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(PingEvent)
    log.info("ping from GitHub: hook %s (%s)", payload.hook_id, payload.zen or "")
    return f"hook {payload.hook_id}"
