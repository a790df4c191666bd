"""The web process: one ASGI app for Slack, GitHub's webhooks, test-report uploads, milestone pages
and health checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import create_slack_app, slack_endpoint, slack_status_line
from core import outbox, services
from core.db import (
    DatabaseUnavailable,
    close_database,
    connection,
    database_errors,
    describe,
    dialect,
    note_failure,
    open_database,
    within_deadline,
)
from core.page_links import PageLinks
from core.settings import Settings
from integrations.api.launches import LaunchUploads, upload_limits
from integrations.api.openapi import openapi_document, openapi_endpoint
from integrations.github.api import GitHubAccess
from integrations.github.checks import CheckPublisher
from integrations.github.events import handler_context
from integrations.github.intake import (
    RETRY_AFTER_DATABASE,
    IntakeTraffic,
    MemoryBudget,
    WebhookLimits,
    hand_back_large_blocks,
    receive_webhook,
)
from integrations.github.milestone_create import MilestoneCreator
from integrations.github.milestone_state import MilestoneCloser
from integrations.github.worker import worker_for
from integrations.pages import Pages
from integrations.pages.github import GitHubSignIn
from integrations.pages.names import DisplayNames
from integrations.pages.sessions import Sessions

log = logging.getLogger("milestones.web")


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    try:
        await within_deadline(lambda: connection().execute_query("SELECT 1"), READY_DEADLINE)
    except DatabaseUnavailable as error:
        return _database_away(error, status="unavailable")
    return JSONResponse({"status": "ok", "database": "ok"})


# A load balancer asks often and gives up soon: answer within this, whatever the engine.
READY_DEADLINE = 1.0


def _database_away(reason: object, **body: str) -> JSONResponse:
    return JSONResponse(
        {**body, "database": f"unavailable: {reason}"},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_DATABASE)},
    )


async def database_away(request: Request, error: Exception) -> Response:
    """Any request that the database's absence stops is answered 503; the outage is logged once."""
    if isinstance(error, DatabaseUnavailable):
        return _database_away(error, error="try again later")
    if note_failure(error):
        return _database_away(describe(error), error="try again later")
    raise error


def github_status_line(settings: Settings, github: GitHubAccess) -> str:
    webhooks = (
        "webhooks on at POST /github/webhooks"
        if settings.github_webhook_secret
        else "webhooks OFF (GITHUB_WEBHOOK_SECRET is not set; POST /github/webhooks answers 503)"
    )
    checks = {
        "app": "; checks: a check run per pull request and milestone",
        "token": "; checks: commit statuses (a token cannot write check runs; a GitHub App can)",
        None: "",
    }[github.mode]
    pages = "" if settings.public_url else "; checks link no milestone page (PUBLIC_URL is not set)"
    return f"GitHub: {webhooks}; {github.describe()}{checks}{pages}"


def web_pages(
    settings: Settings, links: PageLinks, slack_client: AsyncWebClient | None, after_decision: Callable[[], None]
) -> Pages:
    """The pages, with sign-in through GitHub where its client id and secret are set."""
    signin = sessions = None
    secret = settings.session_secret.get_secret_value() if settings.session_secret else links.secret
    if settings.github_client_id and settings.github_client_secret and settings.public_url and secret:
        signin = GitHubSignIn(
            settings.github_client_id,
            settings.github_client_secret.get_secret_value(),
            web_url=settings.github_web_url,
            api_url=settings.github_api_url,
            public_url=settings.public_url,
            cache_seconds=settings.access_cache_seconds,
        )
        sessions = Sessions(secret, hours=settings.session_hours, secure=settings.public_url.startswith("https://"))
    return Pages(links, sessions, signin, DisplayNames(slack_client), after_decision=after_decision)


# Sign-off messages and announcements go out a moment after the change that owes them, so
# that a burst (a launch touching several criteria) is one update.
NOTICE_QUIET = timedelta(seconds=1)
NOTICE_LONGEST = timedelta(seconds=10)
CALENDAR_EVERY = timedelta(hours=1)


def create_app(
    settings: Settings,
    *,
    github: GitHubAccess | None = None,
    manage_database: bool = True,
    workers: int | None = None,
    intake: WebhookLimits | None = None,
) -> Starlette:
    """The ASGI app; `manage_database=False` when the caller has the database open already (tests).

    `workers=0` starts no background task: the caller drives `app.state.worker` and
    `app.state.publisher` itself.
    """
    github = github or GitHubAccess(settings)
    secret = settings.github_webhook_secret.get_secret_value() if settings.github_webhook_secret else None
    links = PageLinks.of(settings)
    publisher = CheckPublisher(
        github,
        page_url=links.milestone_url,
        settling=outbox.Settling(quiet=timedelta(seconds=settings.checks_settle_seconds)),
    )
    slack = create_slack_app(settings, links.milestone_url)
    # GitHub's owed work is the publisher's, Slack's the notices': a slow or rate-limited GitHub
    # never holds up a sign-off message.
    closer = MilestoneCloser(github)
    publisher.handlers[outbox.GITHUB_MILESTONE_STATE] = lambda item: closer.sync(item.subject)
    publisher.handlers[outbox.GITHUB_MILESTONE_EDIT] = lambda item: closer.mirror(item.subject)
    creator = MilestoneCreator(github)
    publisher.handlers[outbox.GITHUB_MILESTONE_CREATE] = lambda item: creator.create(item.subject)
    notices = outbox.Runner(
        {**slack.signoffs.handlers(), **slack.alerts.handlers()} if slack else {},
        settling=outbox.Settling(quiet=NOTICE_QUIET, longest=NOTICE_LONGEST),
        # Due in three days, or overdue: news that no event brings.
        periodic=(CALENDAR_EVERY, services.mark_calendar_alerts),
    )
    if slack:
        slack.signoffs.notices_due = notices.wake

    def owed_work_marked() -> None:
        publisher.wake()
        notices.wake()

    limits = upload_limits(settings.upload_max_mb, settings.upload_max_files)
    uploads = LaunchUploads(limits, settings.upload_rate_limit, links, after_recording=owed_work_marked)

    pages = web_pages(settings, links, slack.bolt.client if slack else None, owed_work_marked)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if manage_database:
            await open_database(settings.database_url)
        async with handler_context(settings, github) as context:
            worker = worker_for(context, settings)
            worker.after_each = owed_work_marked
            worker.memory = app.state.intake_budget
            worker.intake = app.state.intake_traffic
            app.state.worker = worker
            count = settings.webhook_workers if workers is None else workers
            # Deliveries accepted before a crash or restart are waiting: the workers find them.
            tasks = [asyncio.create_task(worker.run()) for _ in range(count)]
            if count and github.mode is not None:
                tasks.append(asyncio.create_task(publisher.run()))
            if count and notices.handlers:
                tasks.append(asyncio.create_task(notices.run()))
            if count and dialect() == "postgres":
                # Work marked by any process (a CLI ingest, another web process) is done at once.
                tasks.append(asyncio.create_task(outbox.listen_for_marks(owed_work_marked)))
            elif count:
                # SQLite cannot tell: its runners look often instead.
                notices.poll_seconds = publisher.poll_seconds = outbox.SQLITE_POLL_SECONDS
            log.info(github_status_line(settings, github))
            log.info(slack_status_line(settings, slack))
            if slack:
                await slack.start()
            try:
                yield
            finally:
                if slack:
                    await slack.stop()
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
            Route("/slack/events", slack_endpoint(slack), methods=["POST"]),
            Route("/api/v1/launches", uploads.post, methods=["POST"]),
            Route("/api/v1/openapi.json", openapi_endpoint(openapi_document(limits, settings.upload_rate_limit))),
            *pages.routes(),
        ],
        lifespan=lifespan,
        exception_handlers={error: database_away for error in database_errors()},
    )
    app.state.webhook_secret = secret
    app.state.webhook_limits = intake = intake or WebhookLimits()
    app.state.intake_budget = MemoryBudget(intake.memory)
    app.state.intake_traffic = IntakeTraffic()
    hand_back_large_blocks(intake.spill)
    app.state.publisher = publisher
    app.state.notices = notices
    app.state.page_links = links
    app.state.pages = pages
    app.state.slack = slack
    return app
