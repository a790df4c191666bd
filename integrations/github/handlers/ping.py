"""`ping`: GitHub's hello when a webhook is created."""

from __future__ import annotations

import logging

from gidgethub import routing, sansio

from integrations.github.events import HandlerContext, on

log = logging.getLogger(__name__)
router = routing.Router()


@on(router, "ping")
async def ping(event: sansio.Event, context: HandlerContext) -> str:
    hook_id = event.data.get("hook_id")
    log.info("ping from GitHub: hook %s (%s)", hook_id, event.data.get("zen", ""))
    return f"hook {hook_id}"
