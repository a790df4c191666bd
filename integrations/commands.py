"""`milestones serve`, `milestones deliveries` and `milestones sync`, added to the core CLI."""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any

from github import GithubException

from core import inbox
from core.catalog import check_repository_name
from core.cli import UsageError, with_database
from core.enums import DeliveryStatus
from core.models import Delivery
from core.report import jsonable
from core.settings import get_settings
from integrations.github.api import GitHubUnavailable
from integrations.github.backfill import backfill
from integrations.github.events import handler_context
from integrations.github.worker import worker_for


def add_serve(commands: Any) -> None:
    command = commands.add_parser("serve", help="run the web process (GitHub webhooks, health checks)")
    command.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    command.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="default $PORT or 8000")
    command.set_defaults(handler=cmd_serve)


def add_deliveries(commands: Any) -> None:
    command = commands.add_parser("deliveries", help="webhook deliveries received: list them, replay one")
    command.add_argument("--failed", action="store_true", help="only those that failed for good")
    command.add_argument("--limit", type=int, default=50)
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=cmd_deliveries)
    actions = command.add_subparsers(dest="deliveries_command", metavar="ACTION")
    replay = actions.add_parser("replay", help="process a stored delivery again, here and now")
    replay.add_argument("guid", metavar="GUID")
    replay.set_defaults(handler=cmd_replay)


def add_sync(commands: Any) -> None:
    command = commands.add_parser(
        "sync", help="pull a repository's milestones, defects, policy, latest runs and open pull requests"
    )
    command.add_argument("repo", metavar="OWNER/REPO")
    command.set_defaults(handler=cmd_sync)


async def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from integrations.web import create_app

    settings = get_settings()
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        # Our own logging set-up (core.cli) stays; uvicorn's would replace it.
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    # What start-up loaded lives as long as the process; left to the collector, every
    # full pass walks it again and pauses an answer by ~60 ms (bench/README.md, Slack).
    gc.freeze()
    await uvicorn.Server(config).serve()
    return 0


@with_database
async def cmd_deliveries(args: argparse.Namespace) -> int:
    deliveries = await inbox.recent(DeliveryStatus.FAILED if args.failed else None, args.limit)
    if args.json:
        print(json.dumps([_delivery_json(delivery) for delivery in deliveries], indent=2))
        return 0
    if not deliveries:
        print("no failed deliveries" if args.failed else "no deliveries received yet")
        return 0
    for delivery in deliveries:
        print(_delivery_line(delivery))
    return 0


def _delivery_json(delivery: Delivery) -> dict[str, Any]:
    return jsonable(
        {
            "guid": delivery.guid,
            "event": delivery.event,
            "action": delivery.action,
            "repository": delivery.repository,
            "status": delivery.status.value,
            "attempts": delivery.attempts,
            "received_at": delivery.received_at,
            "finished_at": delivery.finished_at,
            "error": delivery.error,
            "note": delivery.note,
        }
    )


def _delivery_line(delivery: Delivery) -> str:
    event = delivery.event + (f".{delivery.action}" if delivery.action else "")
    line = (
        f"{delivery.received_at:%Y-%m-%d %H:%M:%S} {delivery.guid} {event} {delivery.repository or '-'}: "
        f"{delivery.status.value} ({delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''})"
    )
    detail = delivery.error or delivery.note
    return f"{line}\n    {detail}" if detail else line


@with_database
async def cmd_replay(args: argparse.Namespace) -> int:
    await inbox.replay(args.guid)
    settings = get_settings()
    async with handler_context(settings) as context:
        status = await worker_for(context, settings).process_next(guid=args.guid)
    if status is None:
        print(f"delivery {args.guid} queued again; a running server took it first")
        return 0
    delivery = await Delivery.get(guid=args.guid)
    print(_delivery_line(delivery))
    return 0 if status in (DeliveryStatus.DONE, DeliveryStatus.IGNORED) else 1


@with_database
async def cmd_sync(args: argparse.Namespace) -> int:
    repository = check_repository_name(args.repo)
    async with handler_context(get_settings()) as context:
        try:
            report = await backfill(context, repository)
        except GitHubUnavailable as error:
            raise UsageError(str(error)) from None
        except GithubException as error:
            message = error.data.get("message") if isinstance(error.data, dict) else error.data
            print(f"error: GitHub answered {error.status} for {repository}: {message}", file=sys.stderr)
            return 1
    print(f"{repository}: {report.policy}")
    print(f"  {report.milestones} milestones, {report.issues} issues ({report.defects} counting as defects)")
    for line in report.runs:
        print(f"  {line}")
    print(f"  {report.pull_requests} open pull requests, their gate checks due")
    return 0
