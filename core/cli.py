"""`milestones`: the engine from a terminal.

Other packages add subcommands (the web server, the clock) through the
`milestones.commands` entry-point group: each entry point is a function taking
the argparse subparsers object, so this module never imports them. They are loaded
only for commands that are not core's, and core's load the ORM only when they run:
`milestones upload` runs on CI machines without either (core.uploader).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from core.wording import launch_counts, plural, short_sha

Handler = Callable[[argparse.Namespace], Awaitable[int]]


class UsageError(Exception):
    """A mistake in the command line or its inputs: said in one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(arguments).parse_args(arguments)
    if getattr(args, "standalone", False):
        # Needs neither settings nor the database, and says its own errors (`milestones upload`).
        standalone: Callable[[argparse.Namespace], int] = args.handler
        return standalone(args)
    from tortoise.exceptions import IntegrityError, OperationalError, ValidationError

    from core.catalog import NotFound
    from core.junit import ReportError
    from core.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Tortoise announces every connect and shutdown at INFO: noise in a terminal.
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        code: int = asyncio.run(args.handler(args))
        return code
    except (UsageError, NotFound, ReportError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
        print(f"error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    except (ValidationError, IntegrityError) as error:
        # Values the store refuses (an over-long commit or plan name, a duplicate).
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OperationalError as error:
        print(f"error: database: {_database_hint(str(error))}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot reach the database ({error.strerror or error}); check DATABASE_URL", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`milestones list | head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0


def _database_hint(message: str) -> str:
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        return f"{message}: the schema is missing, run `milestones migrate` first"
    return message


def build_parser(arguments: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; other packages' commands are added unless `arguments` name one of core's."""
    parser = argparse.ArgumentParser(prog="milestones", description="Milestone gates: is the release ready to ship?")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = commands.add_parser("migrate", help="apply database migrations (safe to run at every deploy)")
    command.set_defaults(handler=cmd_migrate)

    command = commands.add_parser("ingest", help="record a launch from JUnit/xUnit XML reports")
    command.add_argument("reports", nargs="+", metavar="REPORT", type=Path)
    command.add_argument("--repo", required=True, help="OWNER/NAME")
    command.add_argument("--plan", required=True, help="the test plan the launch belongs to")
    command.add_argument("--commit", help="commit SHA tested")
    command.add_argument("--branch", help="branch tested")
    command.add_argument("--source", help="source id (default: a digest of the reports, so re-uploads are ignored)")
    command.add_argument("--attempt", type=int, default=1, help="attempt number; a higher one replaces earlier ones")
    command.add_argument("--dry-run", action="store_true", help="parse and count, store nothing")
    command.add_argument("--json", action="store_true", help="print one JSON object")
    command.set_defaults(handler=cmd_ingest)

    milestone = commands.add_parser("milestone", help="manage milestones").add_subparsers(
        dest="milestone_command", required=True, metavar="ACTION"
    )
    command = milestone.add_parser("add", help="create or update a milestone")
    command.add_argument("name")
    command.add_argument("--repo", required=True, help="OWNER/NAME")
    command.add_argument("--due", type=_date, help="target date, YYYY-MM-DD")
    command.add_argument("--description")
    command.add_argument("--policy", type=Path, help="a .github/milestones.yml file to apply to the repository")
    command.set_defaults(handler=cmd_milestone_add)

    policy = commands.add_parser("policy", help="policy files").add_subparsers(
        dest="policy_command", required=True, metavar="ACTION"
    )
    command = policy.add_parser("check", help="validate a .github/milestones.yml file")
    command.add_argument("file", type=Path)
    command.set_defaults(handler=cmd_policy_check)

    command = commands.add_parser("status", help="the gate verdict of a milestone")
    command.add_argument("name")
    command.add_argument("--repo", help="OWNER/NAME (needed when several repositories have the name)")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=cmd_status)

    command = commands.add_parser("list", help="milestones and their status, worst first")
    command.add_argument("--repo", help="OWNER/NAME")
    command.add_argument("--all", action="store_true", help="include closed milestones")
    command.add_argument("--json", action="store_true")
    command.set_defaults(handler=cmd_list)

    command = commands.add_parser("demo", help="load a sample repository with two milestones")
    command.set_defaults(handler=cmd_demo)

    from core.token_commands import add_token
    from core.uploader import add_upload

    add_token(commands)
    add_upload(commands)

    wanted = next((argument for argument in arguments if not argument.startswith("-")), None)
    if wanted not in commands.choices:
        for entry_point in entry_points(group="milestones.commands"):
            entry_point.load()(commands)
    return parser


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def with_database(handler: Callable[[argparse.Namespace], Awaitable[int]]) -> Handler:
    async def run(args: argparse.Namespace) -> int:
        from core.db import database
        from core.settings import get_settings

        async with database(get_settings().database_url):
            return await handler(args)

    return run


def print_json(data: Any) -> None:
    from core.report import jsonable

    print(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


async def cmd_migrate(args: argparse.Namespace) -> int:
    from core.db import migrate
    from core.settings import get_settings

    await migrate(get_settings().database_url)
    print("database is up to date")
    return 0


async def cmd_ingest(args: argparse.Namespace) -> int:
    from core import services
    from core.db import database
    from core.ingest import LaunchSource, content_digest, file_digest, upload_source_id
    from core.junit import parse_reports
    from core.report import STATUS_TITLE
    from core.settings import get_settings

    for path in args.reports:
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
    report = parse_reports(args.reports)
    counts = report.counts()
    if args.dry_run:
        if args.json:
            print_json(counts)
        else:
            print(launch_counts(counts) + " (dry run: nothing stored)")
        return 0
    digests = [file_digest(path) for path in args.reports]
    source_id = args.source or upload_source_id(digests, args.repo, args.plan, args.commit, args.branch)
    source = LaunchSource(
        repository=args.repo,
        plan=args.plan,
        source_id=source_id,
        attempt=args.attempt,
        commit_sha=args.commit,
        branch=args.branch,
        content_digest=content_digest(digests),
    )
    async with database(get_settings().database_url):
        outcome = await services.record_launch(report, source)
    if args.json:
        print_json(
            {
                **counts,
                "launch_id": outcome.launch_id,
                "created": outcome.created,
                "superseded": outcome.superseded,
                "milestones": {change.milestone.name: change.verdict.status for change in outcome.changes},
            }
        )
        return 0
    note = "" if outcome.created else " (already recorded: nothing changed)"
    print(launch_counts(counts) + f" -> launch {outcome.launch_id}{note}")
    for change in outcome.changes:
        print(f"  {change.milestone.name}: {STATUS_TITLE[change.verdict.status]}")
    return 0


@with_database
async def cmd_milestone_add(args: argparse.Namespace) -> int:
    from core import services
    from core.report import STATUS_TITLE

    policy_text = args.policy.read_text(encoding="utf-8") if args.policy is not None else None
    try:
        milestone, change = await services.save_milestone(
            args.repo,
            args.name,
            target_date=args.due or services.KEEP,
            description=args.description,
            policy_text=policy_text,
            policy_source=str(args.policy),
        )
    except services.PolicyInvalid as invalid:
        for error in invalid.load.errors:
            print(error, file=sys.stderr)
        return 1
    print(f"milestone {milestone.name} in {args.repo}: {STATUS_TITLE[change.verdict.status]}")
    return 0


async def cmd_policy_check(args: argparse.Namespace) -> int:
    from core.policy import load_policy

    if not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    load = load_policy(args.file.read_bytes(), str(args.file))
    if load.ok:
        assert load.policy is not None
        names = ", ".join(load.policy.milestones) or "none"
        print(f"{args.file}: valid ({len(load.policy.plans)} plans; milestones: {names})")
        return 0
    for error in load.errors:
        print(error, file=sys.stderr)
    return 1


@with_database
async def cmd_status(args: argparse.Namespace) -> int:
    from core import services
    from core.report import render_verdict, verdict_json

    milestone = await services.find_milestone(args.repo, args.name)
    state = await services.signoff_state(milestone.repository.full_name, milestone.name)
    launches = await services.latest_launches(milestone)
    verdict, trail = state.reading.verdict, state.trail
    if args.json:
        completion = {"completed_at": state.completed_at, "completed_with": state.completed_with}
        signoffs = [_trail_entry(entry) for entry in trail]
        print_json({**verdict_json(verdict), **completion, "signoffs": signoffs, "launches": launches})
        return 0
    print(render_verdict(verdict))
    if launches:
        print("\nLatest launches:")
        for launch in launches:
            print("  " + _launch_line(launch))
    if trail:
        print("\nSign-off trail:")
        for entry in trail:
            print("  " + _trail_line(entry))
    if state.completed_at is not None:
        approvers = ", ".join(item["user"] for item in state.completed_with) or "no approvals needed"
        print(f"\nComplete since {state.completed_at:%Y-%m-%d %H:%M} UTC, signed off by {approvers}")
    return 0


def _launch_line(launch: Any) -> str:
    where = "".join(
        [
            f" · {short_sha(launch.commit_sha)}" if launch.commit_sha else "",
            f" on {launch.branch}" if launch.branch else "",
            f" · {launch.url}" if launch.url else "",
        ]
    )
    return (
        f"{launch.plan}: launch {launch.id}, {launch.finished_at:%Y-%m-%d %H:%M} UTC, "
        f"{plural(launch.tests, 'test')}, {launch.failing:,} failing{where}"
    )


def _trail_entry(entry: Any) -> dict[str, Any]:
    return {
        "id": entry.id,
        "user": entry.user_id,
        "decision": entry.decision,
        "comment": entry.comment,
        "at": entry.created_at,
        "valid": entry.valid,
        "ends": entry.ends_id,
    }


def _trail_line(entry: Any) -> str:
    standing = " (standing)" if entry.valid else ""
    comment = f": {entry.comment}" if entry.comment else ""
    return f"{entry.created_at:%Y-%m-%d %H:%M} UTC  {entry.user_id} {entry.decision.value}{comment}{standing}"


@with_database
async def cmd_list(args: argparse.Namespace) -> int:
    from core import services
    from core.report import STATUS_TITLE, jsonable

    summaries = await services.list_milestones([args.repo] if args.repo else None, include_closed=args.all)
    if args.json:
        print_json([{**jsonable(summary), "repo": summary.repository} for summary in summaries])
        return 0
    if not summaries:
        print("no milestones yet: `milestones milestone add NAME --repo OWNER/NAME`, or `milestones demo`")
        return 0
    for summary in summaries:
        due = summary.target_date.isoformat() if summary.target_date else "no date"
        rate = "n/a" if summary.pass_rate is None else f"{summary.pass_rate:.1%}"
        flag = " OVERDUE" if summary.overdue else ""
        print(
            f"{summary.repository} {summary.name}: {STATUS_TITLE[summary.status]}{flag} · due {due} · "
            f"pass rate {rate} · {summary.open_blocking} blocking defects"
        )
    return 0


@with_database
async def cmd_demo(args: argparse.Namespace) -> int:
    from core.demo import load_demo

    names = await load_demo()
    print(f"demo loaded: {', '.join(names)}. Try `milestones status v2.0` and `milestones list`.")
    return 0
