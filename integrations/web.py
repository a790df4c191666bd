"""The web process: one ASGI app for GitHub's webhooks, health checks, and (later) Slack."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.db import close_database, connection, open_database
from core.settings import Settings
from integrations.github.api import GitHubAccess
from integrations.github.events import handler_context
from integrations.github.intake import receive_webhook
from integrations.github.worker import worker_for

log = logging.getLogger("milestones.web")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await connection().execute_query("SELECT 1")
    except Exception as error:
        return JSONResponse({"status": "unavailable", "database": str(error) or type(error).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


def github_status_line(settings: Settings, github: GitHubAccess) -> str:
    webhooks = (
        "webhooks on at POST /github/webhooks"
        if settings.github_webhook_secret
        else "webhooks OFF (GITHUB_WEBHOOK_SECRET is not set; POST /github/webhooks answers 503)"
    )
    return f"GitHub: {webhooks}; {github.describe()}"


def create_app(
    settings: Settings,
    *,
    github: GitHubAccess | None = None,
    manage_database: bool = True,
    workers: int | None = None,
) -> Starlette:
    """The ASGI app; `manage_database=False` when the caller has the database open already (tests)."""
    github = github or GitHubAccess(settings)
    secret = settings.github_webhook_secret.get_secret_value() if settings.github_webhook_secret else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_database:
            await open_database(settings.database_url)
        async with handler_context(settings, github) as context:
            worker = worker_for(context, settings)
            app.state.worker = worker
            # Deliveries accepted before a crash or restart are waiting: the workers find them.
            tasks = [asyncio.create_task(worker.run()) for _ in range(settings.webhook_workers if workers is None else workers)]
            log.info(github_status_line(settings, github))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        if manage_database:
            await close_database()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/github/webhooks", receive_webhook, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.webhook_secret = secret
    return app
