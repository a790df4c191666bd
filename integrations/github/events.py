"""What every webhook handler shares: its context, how it declines, payload helpers.

Handlers live in `integrations.github.handlers`, one module per concern, each with its
own router (`@router.register("issues", action="opened")`), as bedevere's are. Each is
called with the event and a `HandlerContext`; it raises `Ignored` when the delivery
asks nothing of us, and `Unprocessable` when trying again cannot help.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import httpx
from gidgethub import routing, sansio

from core.settings import Settings
from integrations.github.api import GitHubAccess
from integrations.github.artifacts import ARTIFACT_LIMITS
from integrations.limits import IntakeLimits


class Ignored(Exception):
    """The delivery needs no work (an event we do not follow, a workflow that feeds no plan)."""


class Unprocessable(Exception):
    """Retrying cannot help (a hostile artifact, a malformed payload): the delivery fails at once."""


@dataclass
class HandlerContext:
    github: GitHubAccess
    http: httpx.AsyncClient
    limits: IntakeLimits = ARTIFACT_LIMITS


@asynccontextmanager
async def handler_context(settings: Settings, github: GitHubAccess | None = None) -> AsyncIterator[HandlerContext]:
    """A context for handlers, with an HTTP client for artifact downloads open while it lasts."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
        yield HandlerContext(github or GitHubAccess(settings), http)


def repository_of(event: sansio.Event) -> str:
    try:
        return event.data["repository"]["full_name"]
    except (KeyError, TypeError):
        raise Unprocessable(f"{event.event} payload names no repository") from None


def installation_of(event: sansio.Event) -> int | None:
    installation = event.data.get("installation") or {}
    return installation.get("id")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def parse_date(value: str | None) -> date | None:
    moment = parse_time(value)
    return moment.date() if moment else None


Handler = Callable[[sansio.Event, "HandlerContext"], Awaitable[str | None]]


def on(router: routing.Router, event_type: str, **detail: Any) -> Callable[[Handler], Handler]:
    """`router.register` for handlers that return a note for the delivery's record (gidgethub's
    types say its callbacks return None)."""

    def register(handler: Handler) -> Handler:
        router.add(cast(Any, handler), event_type, **detail)
        return handler

    return register
