"""`milestones`: the engine from a terminal.

A command pays only for what it uses. This module imports nothing beyond the standard
library: each subcommand names its handler as "module:function", imported when that
command runs, so `milestones --help` loads no ORM and `milestones status` none of the
web, Slack, GitHub or chart libraries. Other packages add subcommands through the
`milestones.commands` entry-point group; each entry point is a function taking the
argparse subparsers object, in a module as light as this one (`integrations/cli.py`,
`bot/cli.py`), and the group is read only when the command is not one of core's.

Every failure ends in one line on stderr that says what to fix, never a traceback:
exit status 1 when an input is refused or a service cannot be reached, 2 for a usage
or configuration error. `milestones upload` (core.uploader) runs on CI machines and
needs neither the settings nor the database: it is `standalone`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date
from pathlib import Path
from typing import Any, cast

from core.enums import TEST_KINDS, Severity
from core.names import TAG_RULE, is_tag, repository_from

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]

log = logging.getLogger(__name__)

ENTRY_POINTS = "milestones.commands"
COMPLETE_COMMAND = "__complete"
SHELLS = ("bash", "zsh", "fish")
EXPORT_FORMATS = ("csv", "json", "junit")


class UsageError(Exception):
    """A mistake in the command line or its inputs: said in one line, exit status 2."""


def run() -> None:
    """The `milestones` program.

    Start-up creates a few hundred thousand objects that live as long as the process
    (modules, classes, the ORM's models); the cyclic collector would walk them again and
    again while they load, and once more at exit. So they load with it paused, and are
    then frozen out of its sight: about a third of the start-up (bench/startup.py).
    """
    gc.disable()
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    arguments, no_color = _without_no_color(sys.argv[1:] if argv is None else list(argv))
    args = build_parser(_wanted_command(arguments)).parse_args(arguments)
    args.no_color = no_color
    if getattr(args, "standalone", False):
        # Needs neither settings nor the database, and says its own errors.
        standalone = cast(Callable[[argparse.Namespace], int], handler_of(args))
        return standalone(args)
    from core.settings import get_settings

    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Tortoise announces every connect and shutdown at INFO: noise in a terminal.
    logging.getLogger("tortoise").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        handler = handler_of(args)
        if not gc.isenabled():
            # Started by run(): what is loaded by now stays to the end (see there).
            gc.freeze()
            gc.enable()
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`milestones list | head`): not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0
    except Exception as error:
        message, status = explain(error)
        print(f"error: {message}", file=sys.stderr)
        return status


def handler_of(args: argparse.Namespace) -> Handler:
    """The command's handler, imported now: a "module:function" reference, or the function."""
    handler = args.handler
    if isinstance(handler, str):
        module, _, name = handler.partition(":")
        handler = getattr(importlib.import_module(module), name)
    return cast(Handler, handler)


def explain(error: BaseException) -> tuple[str, int]:
    """What to tell the user about an error that ended a command, and the exit status."""
    # Checked by module so that classifying an error imports nothing (--help loads no ORM).
    db = sys.modules.get("core.db")
    if isinstance(error, UsageError):
        return str(error), 2
    if db is not None and isinstance(error, db.DatabaseUnavailable):
        return str(error), 2 if error.configuration else 1
    if isinstance(error, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)):
        return f"{error.filename}: {error.strerror}", 1
    if isinstance(error, (LookupError, ValueError)):
        # Refused input: an unknown milestone, a malformed report, a bad value.
        return str(error), 1
    tortoise = sys.modules.get("tortoise.exceptions")
    if tortoise is not None:
        if isinstance(error, (tortoise.ValidationError, tortoise.IntegrityError)):
            # Values the store refuses (an over-long commit or plan name, a duplicate).
            return str(error), 1
        if isinstance(error, tortoise.BaseORMException):
            return f"database: {_database_hint(str(error))}", 1
    if isinstance(error, OSError):
        # A connection lost mid-way (the database, GitHub, Slack): the system's words.
        return str(error), 1
    # A defect of ours: still one line, with the details in the log for a report.
    log.debug("unexpected error", exc_info=error)
    return f"unexpected {type(error).__name__}: {error} (LOG_LEVEL=DEBUG shows where)", 1


def _database_hint(message: str) -> str:
    if "no such table" in message or ("relation" in message and "does not exist" in message):
        return f"{message}: the schema is missing, run `milestones migrate` first"
    return message


def _without_no_color(arguments: list[str]) -> tuple[list[str], bool]:
    """`--no-color` goes anywhere on the line (`milestones list --no-color`), as people put it."""
    end = arguments.index("--") if "--" in arguments else len(arguments)
    kept = [word for word in arguments[:end] if word != "--no-color"] + arguments[end:]
    return kept, len(kept) != len(arguments)


class _Version(argparse.Action):
    """`--version`: the installed version, read only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("milestone-gate")
        except PackageNotFoundError:
            number = "unknown (not installed: pip install -e .)"
        print(f"milestones {number}")
        parser.exit()


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser. Every command is listed (the help and the error for an unknown one name them
    all), but when `command` is one of core's, only its arguments are declared: a run needs no
    other command's. Commands added by other packages are loaded unless `command` is core's."""
    parser = argparse.ArgumentParser(prog="milestones", description="Milestone gates: is the release ready to ship?")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    parser.add_argument(
        "--no-color",
        action="store_true",
        help="no colour even on a terminal, as with NO_COLOR set (allowed anywhere on the line)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    every = command not in CORE_COMMANDS
    for name, (summary, declare) in CORE_COMMANDS.items():
        command_parser = commands.add_parser(name) if summary is None else commands.add_parser(name, help=summary)
        if every or name == command:
            declare(command_parser)
    _hide(commands, COMPLETE_COMMAND)
    if every:
        _add_plugin_commands(commands)
    return parser


def _migrate(command_parser: argparse.ArgumentParser) -> None:
    command_parser.set_defaults(handler="core.commands:migrate")


def _ingest(command_parser: argparse.ArgumentParser) -> None:
    command_parser.add_argument(
        "reports", nargs="+", metavar="REPORT", type=Path, help="XML files, or directories whose *.xml files to read"
    )
    command_parser.add_argument("--repo", required=True, type=repository_name, help="OWNER/NAME")
    command_parser.add_argument("--plan", required=True, type=_text, help="the test plan the launch belongs to")
    command_parser.add_argument("--commit", help="commit SHA tested")
    command_parser.add_argument("--branch", help="branch tested")
    command_parser.add_argument(
        "--source", help="source id (default: a digest of the reports, so re-uploads are ignored)"
    )
    command_parser.add_argument(
        "--attempt", type=positive, default=1, help="attempt number; a higher one replaces earlier ones"
    )
    command_parser.add_argument("--dry-run", action="store_true", help="parse and count, store nothing")
    command_parser.add_argument("--json", action="store_true", help="print one JSON object")
    command_parser.set_defaults(handler="core.commands:ingest")


def _milestone(parent: argparse.ArgumentParser) -> None:
    milestone = parent.add_subparsers(dest="milestone_command", required=True, metavar="ACTION")
    command_parser = milestone.add_parser("add", help="create or update a milestone")
    command_parser.add_argument("name", type=_text)
    command_parser.add_argument("--repo", required=True, type=repository_name, help="OWNER/NAME")
    command_parser.add_argument("--due", type=_date, help="target date, YYYY-MM-DD")
    command_parser.add_argument("--start", type=_date, help="start date, YYYY-MM-DD (planned until then)")
    command_parser.add_argument(
        "--tag", action="append", type=tag, metavar="TAG", help="tag the milestone (repeat for several)"
    )
    command_parser.add_argument("--description")
    command_parser.add_argument("--policy", type=Path, help="a .github/milestones.yml file to apply to the repository")
    command_parser.set_defaults(handler="core.commands:milestone_add")
    command_parser = milestone.add_parser("list", help="milestones and their status, worst first (as `list`)")
    _list_arguments(command_parser)
    command_parser = milestone.add_parser("show", help="a milestone's details: state, date, plans, history kept")
    _named(command_parser, json=True)
    command_parser.set_defaults(handler="core.milestone_commands:show")
    command_parser = milestone.add_parser("close", help="close a milestone (and its GitHub milestone)")
    _named(command_parser)
    command_parser.set_defaults(handler="core.milestone_commands:close")
    command_parser = milestone.add_parser("reopen", help="open a closed milestone again (and its GitHub milestone)")
    _named(command_parser)
    command_parser.set_defaults(handler="core.milestone_commands:reopen")
    command_parser = milestone.add_parser("rename", help="rename a milestone, keeping its history")
    _named(command_parser)
    command_parser.add_argument("new_name", metavar="NEW_NAME", type=_text)
    command_parser.set_defaults(handler="core.milestone_commands:rename")
    command_parser = milestone.add_parser("delete", help="delete a milestone; one with history only with --force")
    _named(command_parser)
    command_parser.add_argument("--force", action="store_true", help="delete it with its history")
    command_parser.set_defaults(handler="core.milestone_commands:delete")

    command_parser = milestone.add_parser(
        "clone", help="a new milestone with the same gate (plans, thresholds, approvers, tags), no history"
    )
    command_parser.add_argument("source", type=_text, metavar="FROM")
    command_parser.add_argument("name", type=_text, metavar="NEW")
    command_parser.add_argument(
        "--repo", type=repository_name, help="OWNER/NAME (needed when several repositories have FROM)"
    )
    command_parser.add_argument("--due", type=_date, help="target date, YYYY-MM-DD")
    command_parser.add_argument("--start", type=_date, help="start date, YYYY-MM-DD")
    command_parser.set_defaults(handler="core.commands:milestone_clone")


def _policy(parent: argparse.ArgumentParser) -> None:
    policy = parent.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    command_parser = policy.add_parser("check", help="validate a .github/milestones.yml file")
    command_parser.add_argument("file", type=Path)
    command_parser.set_defaults(handler="core.commands:policy_check")


def _status(command_parser: argparse.ArgumentParser) -> None:
    _named(command_parser, json=True)
    command_parser.set_defaults(handler="core.status_commands:status")


def _tests(command_parser: argparse.ArgumentParser) -> None:
    _named(command_parser, json=True)
    command_parser.add_argument("kind", nargs="?", type=str.lower, choices=TEST_KINDS, help="default failing")
    command_parser.set_defaults(handler="core.milestone_commands:tests")


def _defects(command_parser: argparse.ArgumentParser) -> None:
    _named(command_parser, json=True)
    command_parser.add_argument(
        "severity",
        nargs="?",
        type=str.lower,
        choices=[severity.value for severity in Severity],
        help="only this severity",
    )
    command_parser.set_defaults(handler="core.milestone_commands:defects")


def _trend(command_parser: argparse.ArgumentParser) -> None:
    _named(command_parser, json=True)
    command_parser.set_defaults(handler="core.milestone_commands:trend")


def _export(command_parser: argparse.ArgumentParser) -> None:
    _named(command_parser)
    command_parser.add_argument("--format", required=True, choices=EXPORT_FORMATS, type=str.lower)
    command_parser.add_argument("--output", "-o", type=Path, help="write to this file (default: standard output)")
    command_parser.set_defaults(handler="core.milestone_commands:export")


def _completion(command_parser: argparse.ArgumentParser) -> None:
    command_parser.add_argument("shell", choices=SHELLS)
    command_parser.set_defaults(handler="core.completion:script", standalone=True)


def _complete(command_parser: argparse.ArgumentParser) -> None:
    command_parser.add_argument("words", nargs=argparse.REMAINDER)
    command_parser.set_defaults(handler="core.completion:complete", standalone=True)


def _demo(command_parser: argparse.ArgumentParser) -> None:
    command_parser.set_defaults(handler="core.commands:demo")


def _token(command_parser: argparse.ArgumentParser) -> None:
    from core.token_commands import add_token

    add_token(command_parser)


def _named(command_parser: argparse.ArgumentParser, *, json: bool = False) -> None:
    """A milestone named as people type it (`v2`, `V2.0` and `2.0` find v2.0), and where."""
    command_parser.add_argument("name", metavar="NAME", type=_text, help="the milestone (forgiving: v2 finds v2.0)")
    command_parser.add_argument(
        "--repo", type=repository_name, help="OWNER/NAME or its GitHub URL (needed when several repositories have it)"
    )
    if json:
        command_parser.add_argument("--json", action="store_true", help="print JSON (shape in the README)")


def _list_arguments(command_parser: argparse.ArgumentParser) -> None:
    command_parser.add_argument("--repo", type=repository_name, help="OWNER/NAME or its GitHub URL")
    command_parser.add_argument("--tag", type=tag, help="only milestones with this tag")
    command_parser.add_argument("--all", action="store_true", help="include completed and closed milestones")
    command_parser.add_argument("--json", action="store_true", help="print JSON (shape in the README)")
    command_parser.set_defaults(handler="core.status_commands:list_milestones")


def _upload(command: argparse.ArgumentParser) -> None:
    command.description = (
        "Send reports to MILESTONES_URL with the token in MILESTONES_TOKEN. The commit, branch, "
        "job link and source are read from GitHub Actions, GitLab CI, Jenkins, CircleCI or Buildkite "
        "variables unless given."
    )
    command.add_argument(
        "reports", nargs="+", metavar="REPORT", type=Path, help="XML files (gzip too), or directories of *.xml"
    )
    command.add_argument("--plan", required=True, help="the test plan the launch belongs to")
    command.add_argument("--repo", help="OWNER/NAME (default: the token's repository)")
    command.add_argument("--commit", help="commit SHA tested")
    command.add_argument("--branch", help="branch tested")
    command.add_argument("--source", help="what identifies this launch (default: the CI job, else the reports)")
    command.add_argument("--attempt", type=int, help="attempt number; a higher one replaces earlier ones")
    command.add_argument("--job-url", help="link to the CI job, shown wherever the launch is linked")
    command.add_argument("--server", help="the service's URL (default: MILESTONES_URL)")
    command.add_argument("--retries", type=int, default=4, help="retries after a failure on the way (default 4)")
    command.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    # Run without the service's settings or database (core.cli.main).
    command.set_defaults(handler="core.uploader:run", standalone=True)


# Core's commands, in the order the help lists them: name, (summary for the help, or None
# for a hidden command; the function declaring its arguments).
CORE_COMMANDS: dict[str, tuple[str | None, Callable[[argparse.ArgumentParser], None]]] = {
    "migrate": ("apply database migrations (safe to run at every deploy)", _migrate),
    "ingest": ("record a launch from JUnit/xUnit XML reports", _ingest),
    "milestone": ("manage milestones", _milestone),
    "policy": ("policy files", _policy),
    "status": ("the gate verdict of a milestone", _status),
    "list": ("milestones and their status: overdue and active first, then planned, worst first", _list_arguments),
    "tests": ("a milestone's failing, untested or flaky tests", _tests),
    "defects": ("a milestone's open defects, blocking ones first", _defects),
    "trend": ("a milestone's pass rate and blocking defects over 30 days", _trend),
    "export": ("a milestone's latest state per test as CSV, JSON or JUnit", _export),
    "completion": ('shell completion: eval "$(milestones completion bash)"', _completion),
    # What the completion scripts call on each Tab.
    COMPLETE_COMMAND: (None, _complete),
    "demo": ("load a sample repository with two milestones", _demo),
    "token": ("upload tokens for CI jobs: create, list, revoke", _token),
    "upload": ("send JUnit/xUnit reports to a milestones server as one launch (from any CI)", _upload),
}


def _hide(commands: Any, name: str) -> None:
    """Leave a subcommand out of the help (argparse lists every parser added with a help)."""
    commands._choices_actions[:] = [action for action in commands._choices_actions if action.dest != name]


def _wanted_command(arguments: Sequence[str]) -> str | None:
    """The subcommand named first on the command line; None when an option comes first (`--help`)."""
    return arguments[0] if arguments and not arguments[0].startswith("-") else None


def _add_plugin_commands(commands: Any) -> None:
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINTS):
        try:
            add = entry_point.load()
        except (ImportError, AttributeError) as error:
            # Entry points are recorded at install time: after an upgrade that moved one,
            # the installed record is stale until the package is installed again.
            print(
                f"warning: command {entry_point.name!r} unavailable ({entry_point.value}: {error}); "
                "install the package again (pip install -e .)",
                file=sys.stderr,
            )
            continue
        add(commands)


# Argument types: a bad value is a usage error (exit 2) before anything runs.


def repository_name(text: str) -> str:
    try:
        return repository_from(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive(text: str) -> int:
    return _whole_number(text, 1, None, "a whole number of 1 or more")


def port(text: str) -> int:
    return _whole_number(text, 0, 65535, "a port number (0 to 65535)")


def _whole_number(text: str, low: int, high: int | None, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
    return value


def tag(text: str) -> str:
    """A tag as the policy file allows them: one word."""
    if not is_tag(text):
        raise argparse.ArgumentTypeError(f"{text!r}: {TAG_RULE}")
    return text


def _text(text: str) -> str:
    """A name: white space around it dropped, and not empty."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text.strip()


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def with_database(handler: Handler) -> Handler:
    """The handler, run with the database of DATABASE_URL open."""

    async def run(args: argparse.Namespace) -> int:
        from core.db import database
        from core.settings import get_settings

        async with database(get_settings().database_url):
            return await handler(args)

    return run
