"""What `milestones serve`, `milestones deliveries` and `milestones sync` do (declared in `integrations/cli.py`)."""

from __future__ import annotations

import argparse
import gc
import json
import sys
from typing import TYPE_CHECKING, Any

import httpx
import requests
from github import GithubException

from core import inbox
from core.cli import UsageError, with_database
from core.db import tortoise_config
from core.enums import DeliveryStatus
from core.models import Delivery
from core.report import jsonable
from core.settings import get_settings
from core.wording import first_line

if TYPE_CHECKING:
    from rich.text import Text
from integrations.github.api import GitHubUnavailable
from integrations.github.backfill import backfill
from integrations.github.events import handler_context
from integrations.github.worker import worker_for


async def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from integrations.web import create_app

    settings = get_settings()
    # A DATABASE_URL this process can never use (say, a SQLite too old) is said now, in one
    # line, rather than as the server's failed start-up.
    tortoise_config(settings.database_url)
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
async def deliveries(args: argparse.Namespace) -> int:
    deliveries = await inbox.recent(DeliveryStatus.FAILED if args.failed else None, args.limit)
    if args.json:
        print(json.dumps([_delivery_json(delivery) for delivery in deliveries], indent=2))
        return 0
    if not deliveries:
        print("no failed deliveries" if args.failed else "no deliveries received yet")
        return 0
    from core.output import Printer, styled

    rows: list[list[str | Text]] = []
    for delivery in deliveries:
        event = delivery.event + (f".{delivery.action}" if delivery.action else "")
        style = DELIVERY_STYLE.get(delivery.status.value, "")
        rows.append(
            [
                f"{delivery.received_at:%Y-%m-%d %H:%M:%S}",
                delivery.guid,
                event,
                delivery.repository or "-",
                styled(delivery.status.value, style),
                str(delivery.attempts),
                first_line(delivery.error or delivery.note or ""),
            ]
        )
    Printer(args).table(
        ["RECEIVED (UTC)", "GUID", "EVENT", "REPOSITORY", "STATUS", "ATTEMPTS", "ERROR OR NOTE"],
        rows,
        right=["ATTEMPTS"],
    )
    return 0


def _delivery_line(delivery: Delivery) -> str:
    event = delivery.event + (f".{delivery.action}" if delivery.action else "")
    line = (
        f"{delivery.received_at:%Y-%m-%d %H:%M:%S} {delivery.guid} {event} {delivery.repository or '-'}: "
        f"{delivery.status.value} ({delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''})"
    )
    detail = delivery.error or delivery.note
    return f"{line}\n    {detail}" if detail else line


DELIVERY_STYLE = {"failed": "bold red", "done": "green", "ignored": "dim", "pending": "yellow", "processing": "yellow"}


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


@with_database
async def replay(args: argparse.Namespace) -> int:
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
async def sync(args: argparse.Namespace) -> int:
    repository = args.repo
    async with handler_context(get_settings()) as context:
        try:
            if sys.stderr.isatty():
                from core.output import progress

                with progress(args, f"pulling {repository} from GitHub", None):
                    report = await backfill(context, repository)
            else:
                report = await backfill(context, repository)
        except GitHubUnavailable as error:
            raise UsageError(str(error)) from None
        except GithubException as error:
            message = error.data.get("message") if isinstance(error.data, dict) else error.data
            print(f"error: GitHub answered {error.status} for {repository}: {message}", file=sys.stderr)
            return 1
        except (requests.RequestException, httpx.HTTPError) as error:
            print(
                f"error: cannot reach GitHub at {context.github.api_url} ({_reason(error)}); "
                "run sync again once it answers (what was pulled so far is kept, and nothing is pulled twice)",
                file=sys.stderr,
            )
            return 1
    print(f"{repository}: {report.policy}")
    print(f"  {report.milestones} milestones, {report.issues} issues ({report.defects} counting as defects)")
    for line in report.runs:
        print(f"  {line}")
    print(f"  {report.pull_requests} open pull requests, their gate checks due")
    return 0


def _reason(error: BaseException) -> str:
    """The innermost cause of a failed request, e.g. "[Errno 111] Connection refused"."""
    while True:
        # urllib3 keeps the cause in `.reason`; requests wraps urllib3's error as its first argument.
        inner = getattr(error, "reason", None)
        if not isinstance(inner, BaseException) and error.args and isinstance(error.args[0], BaseException):
            inner = error.args[0]
        if not isinstance(inner, BaseException):
            break
        error = inner
    return str(error).rpartition("): ")[2] or type(error).__name__
