"""Running `milestones` in tests: in this process (fast), or as a real process.

In-process, `core.cli.main(argv)` runs on a thread of its own, as the program runs it:
its own event loop (asyncio.run), its own database connections (`core.db.database`
opens them for the calling task only), the settings read afresh from the environment
and the working directory given, stdout and stderr captured, argparse's exit taken as
the exit status. The session's database connection is left alone. A few tests run the
installed program as a real process instead, to prove what only a process shows
(start-up, signals, exit status and output of the real entry point).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import cli
from core.settings import get_settings

MILESTONES = Path(sys.executable).parent / "milestones"


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run(*args: str | Path, database_url: str, cwd: Path, **env: str | None) -> Result:
    """`milestones ARGS...` in this process, in `cwd` (where no `.env` lies), against `database_url`."""
    environment = _environment(database_url, env)
    saved_environment, saved_cwd = dict(os.environ), os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    outcome: dict[str, Any] = {}

    def command() -> None:
        try:
            outcome["status"] = cli.main([str(arg) for arg in args])
        except SystemExit as exit:
            outcome["status"] = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        except BaseException as error:  # reported to the test below, as a failure of the command
            outcome["error"] = error

    os.environ.clear()
    os.environ.update(environment)
    os.chdir(cwd)
    get_settings.cache_clear()
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            thread = threading.Thread(target=command, name="milestones")
            thread.start()
            thread.join(timeout=120)
        assert not thread.is_alive(), f"milestones {args} did not finish"
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environment)
        get_settings.cache_clear()
    if "error" in outcome:
        raise outcome["error"]
    return Result(outcome["status"], stdout.getvalue(), stderr.getvalue())


def run_process(*args: str | Path, database_url: str, cwd: Path, **env: str | None) -> Result:
    """`milestones ARGS...` as a real process."""
    result = subprocess.run(
        [str(MILESTONES), *map(str, args)],
        env=_environment(database_url, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Result(result.returncode, result.stdout, result.stderr)


def _environment(database_url: str, env: dict[str, str | None]) -> dict[str, str]:
    """The test's environment with DATABASE_URL and `env` (None: unset), without LOG_LEVEL unless given."""
    changes = {"LOG_LEVEL": None, **env, "DATABASE_URL": database_url}
    environment = {key: value for key, value in os.environ.items() if key not in changes}
    environment.update({key: value for key, value in changes.items() if value is not None})
    return environment


def succeeds(*args: str | Path, database_url: str, cwd: Path, **env: str | None) -> str:
    """Run a command that must work quietly; its standard output."""
    result = run(*args, database_url=database_url, cwd=cwd, **env)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


def json_of(*args: str | Path, database_url: str, cwd: Path, **env: str | None) -> Any:
    return json.loads(succeeds(*args, "--json", database_url=database_url, cwd=cwd, **env))


def assert_refused_quietly(result: Result, exit_code: int) -> list[str]:
    """A refusal: the exit code, nothing on stdout, no traceback; the stderr lines."""
    assert result.returncode == exit_code, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr.splitlines()


def migrated(database_url: str, cwd: Path) -> str:
    """The database, migrated by `milestones migrate`."""
    assert succeeds("migrate", database_url=database_url, cwd=cwd) == "database is up to date\n"
    return database_url
