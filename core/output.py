"""What the commands that print show people: aligned tables, and colour only on a terminal.

Imported only by commands that print, and rich (a noticeable share of a start-up) only
for what needs it: colour, a table, a progress bar; plain lines into a pipe go without.
Colour goes to a terminal only: never into a pipe or a file, nor when NO_COLOR is set
(https://no-color.org) or `--no-color` was given. A pipe gets the same table with
plain, aligned columns and no trailing blanks, so `grep` and `awk` read it.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Protocol

from core.enums import GateStatus
from core.report import STATUS_TITLE, jsonable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table
    from rich.text import Text

STATUS_STYLE = {
    GateStatus.BLOCKED: "bold red",
    GateStatus.AT_RISK: "yellow",
    GateStatus.NO_DATA: "dim",
    GateStatus.READY_FOR_SIGNOFF: "cyan",
    GateStatus.COMPLETE: "green",
}
# Words of the terminal's verdict (core.report.render_verdict) that carry its meaning.
VERDICT_HIGHLIGHTS = (
    (r"✔", "green"),
    (r"✘", "red"),
    (r"(?<= )\?(?= )", "yellow"),
    (r"\bOVERDUE\b", "bold red"),
    *((rf"(?<=: ){title}\b", style) for status, title in STATUS_TITLE.items() for style in [STATUS_STYLE[status]]),
)
# Wide enough that a table's cells are never cut or wrapped.
PIPE_WIDTH = 10_000


def print_json(data: Any) -> None:
    print(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


def colour_wanted(args: argparse.Namespace | None, stream: IO[str]) -> bool:
    if getattr(args, "no_color", False) or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Printer:
    """Writes to standard output (or `stream`) in colour when that is a terminal people read."""

    def __init__(self, args: argparse.Namespace | None = None, stream: IO[str] | None = None):
        self.stream = stream or sys.stdout
        self.colour = colour_wanted(args, self.stream)

    def _console(self, file: IO[str]) -> Console:
        from rich.console import Console

        if self.colour:
            # Never cut a cell to the terminal's width: a narrow terminal wraps the line instead.
            return Console(file=file, force_terminal=True, highlight=False, soft_wrap=True, width=PIPE_WIDTH)
        return Console(file=file, no_color=True, force_terminal=False, highlight=False, width=PIPE_WIDTH)

    def print(self, renderable: Text | Table | str) -> None:
        if self.colour:
            self._console(self.stream).print(renderable)
            return
        buffer = io.StringIO()
        self._console(buffer).print(renderable)
        for line in buffer.getvalue().splitlines():
            print(line.rstrip(), file=self.stream)

    def line(self, text: str, style: str | None = None) -> None:
        if not self.colour:
            print(text, file=self.stream)
            return
        from rich.text import Text

        self.print(Text(text, style=style or ""))

    def verdict(self, text: str) -> None:
        """A rendered verdict: ✔ green, ✘ red, the status in its colour."""
        if not self.colour:
            print(text, file=self.stream)
            return
        from rich.text import Text

        rendered = Text(text)
        for pattern, style in VERDICT_HIGHLIGHTS:
            rendered.highlight_regex(pattern, style)
        self.print(rendered)

    def table(
        self,
        headers: Sequence[str],
        rows: Iterable[Sequence[str | Text]],
        *,
        right: Iterable[str] = (),
        show_header: bool = True,
    ) -> None:
        """Columns aligned; `right`: the headers of columns of numbers, aligned right."""
        from rich.table import Table

        numbers = set(right)
        table = Table(
            box=None, pad_edge=False, show_edge=False, header_style="bold", expand=False, show_header=show_header
        )
        for header in headers:
            table.add_column(header, justify="right" if header in numbers else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        self.print(table)


class Stages(Protocol):
    def advance(self, count: int) -> None: ...

    def stage(self, description: str) -> None: ...


class _Bar:
    def __init__(self, progress: Progress, task: TaskID):
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def stage(self, description: str) -> None:
        # What follows has no measure: the bar gives way to a pulse and the time so far.
        self._progress.update(self._task, description=description, total=None)


@contextmanager
def progress(args: argparse.Namespace | None, description: str, total: int | None) -> Iterator[Stages]:
    """A bar on standard error while a long step runs, for a terminal (callers check that
    standard error is one: never in a CI log). `total`: the bytes to go through (None: not
    known, a pulse); the bar is gone when the step ends."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True, no_color=not colour_wanted(args, sys.stderr))
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield _Bar(bar, bar.add_task(description, total=total))


def styled(text: str, style: str = "") -> Text:
    from rich.text import Text

    return Text(text, style=style)


def status_text(status: GateStatus, overdue: bool = False) -> Text:
    from rich.text import Text

    text = Text(STATUS_TITLE[status], style=STATUS_STYLE[status])
    if overdue:
        text.append(" OVERDUE", style="bold red")
    return text
