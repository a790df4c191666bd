"""`milestones status` and `milestones list`: what people run most, so this module imports
only what reading and showing milestones needs (no report parsing, no ingest)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core import services
from core.cli import with_database
from core.enums import Lifecycle
from core.lifecycle import LIFECYCLE_TITLE
from core.lookup import find_milestone_ref
from core.output import print_json
from core.page_links import PageLinks
from core.report import completion_text, jsonable, render_verdict, verdict_json
from core.settings import get_settings
from core.wording import plural, short_sha

if TYPE_CHECKING:
    from rich.text import Text


@with_database
async def status(args: argparse.Namespace) -> int:
    ref = await find_milestone_ref(args.name, args.repo)
    milestone = await services.find_milestone(ref.repository, ref.name)
    state = await services.signoff_state(milestone.repository.full_name, milestone.name)
    launches = await services.latest_launches(milestone)
    verdict, trail = state.reading.verdict, state.trail
    page = PageLinks.of(get_settings()).milestone_url(ref.repository, ref.name)
    if args.json:
        completion = {"completed_at": state.completed_at, "completed_with": state.completed_with}
        signoffs = [_trail_entry(entry) for entry in trail]
        extra = {"tags": state.reading.tags, "signoffs": signoffs, "launches": launches}
        print_json({**verdict_json(verdict), "repo": ref.repository, "page_url": page, **completion, **extra})
        return 0
    from core.output import Printer

    Printer(args).verdict(render_verdict(verdict))
    if state.reading.tags:
        print(f"Tags: {', '.join(state.reading.tags)}")
    if page:
        print(f"\nMilestone page: {page}")
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
async def list_milestones(args: argparse.Namespace) -> int:
    summaries = await services.list_milestones([args.repo] if args.repo else None, include_all=args.all, tag=args.tag)
    if args.json:
        print_json([{**jsonable(summary), "repo": summary.repository} for summary in summaries])
        return 0
    if not summaries:
        if args.tag:
            print(f"no milestones tagged {args.tag}" + ("" if args.all else " (--all shows completed and closed ones)"))
        else:
            print("no milestones yet: `milestones milestone add NAME --repo OWNER/NAME`, or `milestones demo`")
        return 0
    from core.output import Printer, status_text

    tagged = any(summary.tags for summary in summaries)
    headers = ["REPOSITORY", "MILESTONE", "LIFECYCLE", "STATUS", "COMPLETION", "DUE", "PASS RATE", "BLOCKING"]
    rows = []
    for summary in summaries:
        lifecycle = LIFECYCLE_TITLE[summary.lifecycle]
        if summary.start_date and summary.lifecycle is Lifecycle.PLANNED:
            lifecycle += f", starts {summary.start_date.isoformat()}"
        row: list[str | Text] = [
            summary.repository,
            summary.name,
            lifecycle,
            status_text(summary.status, summary.overdue),
            completion_text(summary.completion),
            summary.target_date.isoformat() if summary.target_date else "no date",
            "n/a" if summary.pass_rate is None else f"{summary.pass_rate:.1%}",
            str(summary.open_blocking),
        ]
        if tagged:
            row.append(", ".join(summary.tags))
        rows.append(row)
    Printer(args).table([*headers, "TAGS"] if tagged else headers, rows, right=["PASS RATE", "BLOCKING"])
    return 0
