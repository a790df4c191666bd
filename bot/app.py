"""The Slack app: Bolt over HTTP at /slack/events, or over Socket Mode with an app token."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.alerts import Alerts
from bot.answers import Answers, PageUrl
from bot.digests import Digests
from bot.listeners import RECEIVED_AT, register
from bot.signoffs import Signoffs
from bot.slack_api import retry_handlers
from bot.verification import Verified, verify
from core.settings import Settings

log = logging.getLogger("milestones.slack")


@dataclass
class SlackApp:
    bolt: AsyncApp
    # Requests over HTTP are verified with it (bot.verification) before Bolt sees them.
    signing_secret: str | None
    socket_mode: AsyncSocketModeHandler | None
    signoffs: Signoffs
    alerts: Alerts
    _connecting: asyncio.Task | None = None

    async def start(self) -> None:
        if self.socket_mode:
            # The client retries until Slack answers (logging each failure); the rest of
            # the service does not wait for it.
            self._connecting = asyncio.create_task(self.socket_mode.connect_async())

    async def stop(self) -> None:
        if self._connecting:
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self.socket_mode:
            await self.socket_mode.close_async()


def create_slack_app(settings: Settings, page_url: PageUrl) -> SlackApp | None:
    if settings.slack_bot_token is None:
        return None
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt = AsyncApp(
        token=settings.slack_bot_token.get_secret_value(),
        signing_secret=secret,
        # Every HTTP request is verified before it reaches Bolt (bot.verification): Bolt's own
        # check answers 500 to a malformed timestamp and logs unsigned bodies whole. Over
        # Socket Mode nothing comes over HTTP.
        request_verification_enabled=False,
        logger=log,
    )
    # Bolt builds its client from the token (handing it one of ours makes it warn about
    # the token on every start); each request's client copies these two.
    bolt.client.base_url = settings.slack_api_url
    bolt.client.retry_handlers = retry_handlers()
    signoffs = Signoffs(bolt.client, settings.slack_command)
    digests = Digests(bolt.client, settings.slack_command, settings.tz)
    alerts = Alerts(bolt.client, settings.slack_command)
    register(bolt, Answers(settings.slack_command, page_url, signoffs, digests, alerts), signoffs)
    socket_mode = None
    if settings.slack_app_token is not None:
        socket_mode = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
    return SlackApp(bolt, secret, socket_mode, signoffs, alerts)


def slack_endpoint(slack: SlackApp | None):
    async def slack_events(request: Request) -> Response:
        if slack is None or slack.signing_secret is None:
            reason = (
                "Slack is not configured (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET)"
                if slack is None
                else "Slack events come over Socket Mode here (SLACK_SIGNING_SECRET is not set)"
            )
            return JSONResponse({"error": reason}, status_code=503)
        received_at = time.monotonic()
        verified = await verify(request, slack.signing_secret)
        if not isinstance(verified, Verified):
            return verified
        bolt_request = AsyncBoltRequest(
            body=verified.body,
            query=request.query_params,  # type: ignore[arg-type]
            headers=request.headers,  # type: ignore[arg-type]
        )
        bolt_request.context[RECEIVED_AT] = received_at
        return to_starlette_response(await slack.bolt.async_dispatch(bolt_request))

    return slack_events


def slack_status_line(settings: Settings, slack: SlackApp | None) -> str:
    if slack is None:
        return "Slack: off (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, or SLACK_APP_TOKEN for Socket Mode)"
    ways = []
    if slack.signing_secret:
        ways.append("events, commands and interactivity at POST /slack/events")
    if slack.socket_mode:
        ways.append("Socket Mode")
    return f"Slack: on, {settings.slack_command} over " + " and ".join(ways)
