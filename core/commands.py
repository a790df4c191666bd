"""What core's `milestones` commands do; `core/cli.py` declares them and imports this
module only when one of them runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import services
from core.cli import UsageError, with_database
from core.db import database
from core.db import migrate as migrate_database
from core.enums import Lifecycle
from core.ingest import LaunchSource, content_digest, file_digest, upload_source_id
from core.junit import ParsedReport, parse_reports
from core.lifecycle import LIFECYCLE_TITLE
from core.lookup import find_milestone_ref
from core.page_links import PageLinks
from core.policy import load_policy
from core.report import STATUS_TITLE, clone_text, completion_text, jsonable, render_verdict, verdict_json
from core.settings import get_settings
from core.wording import launch_counts, plural, short_sha

if TYPE_CHECKING:
    from rich.text import Text

    from core.output import Stages


# Reports this large (about 5,000 test cases) get a progress bar on a terminal.
PROGRESS_FROM_BYTES = 1024 * 1024


def print_json(data: Any) -> None:
    print(json.dumps(jsonable(data), indent=2, ensure_ascii=False))


async def migrate(args: argparse.Namespace) -> int:
    await migrate_database(get_settings().database_url)
    print("database is up to date")
    return 0


async def _record(args: argparse.Namespace, files: list[Path], report: ParsedReport) -> services.LaunchOutcome:
    digests = [file_digest(path) for path in files]
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
        return await services.record_launch(report, source)


def report_files(paths: Sequence[Path]) -> list[Path]:
    """The files to read: each file named, and the `*.xml` files directly in each directory named."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(child for child in path.iterdir() if child.suffix.lower() == ".xml" and child.is_file())
            if not found:
                raise UsageError(f"{path}: no XML reports (*.xml) in this directory")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{path}: no such file")
    # A file named twice (itself and through its directory) is read once.
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values())


async def ingest(args: argparse.Namespace) -> int:
    files = report_files(args.reports)
    size = sum(path.stat().st_size for path in files)
    bar: AbstractContextManager[Stages | None] = nullcontext()
    # Small reports take a moment: no bar to flash by; and none in a CI log.
    if size >= PROGRESS_FROM_BYTES and sys.stderr.isatty():
        from core.output import progress

        bar = progress(args, "reading reports", size)
    with bar as stages:
        report = parse_reports(files, progress=stages.advance if stages else None)
        counts = report.counts()
        if not args.json:
            for warning in report.warnings:
                print(f"warning: {warning}", file=sys.stderr)
        if args.dry_run:
            outcome = None
        else:
            if stages:
                stages.stage(f"recording {plural(counts['tests'], 'test')}")
            outcome = await _record(args, files, report)
    if outcome is None:
        if args.json:
            print_json({**counts, "warnings": report.warnings})
        else:
            print(launch_counts(counts) + " (dry run: nothing stored)")
        return 0
    if args.json:
        print_json(
            {
                **counts,
                "warnings": report.warnings,
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
async def milestone_add(args: argparse.Namespace) -> int:
    # Bytes: the policy reader says which line of which file is not UTF-8.
    policy = args.policy.read_bytes() if args.policy is not None else None
    try:
        milestone, change = await services.save_milestone(
            args.repo,
            args.name,
            target_date=args.due or services.KEEP,
            start_date=args.start or services.KEEP,
            tags=args.tag or None,
            description=args.description,
            policy_text=policy,
            policy_source=str(args.policy),
        )
    except services.PolicyInvalid as invalid:
        for error in invalid.load.errors:
            print(error, file=sys.stderr)
        return 1
    await milestone.fetch_related("repository")
    verdict = change.verdict
    print(
        f"milestone {milestone.name} in {milestone.repository.full_name}: {LIFECYCLE_TITLE[verdict.lifecycle]}, "
        f"{STATUS_TITLE[verdict.status]}"
    )
    return 0


@with_database
async def milestone_clone(args: argparse.Namespace) -> int:
    clone = await services.clone_milestone(
        args.repo, args.source, args.name, target_date=args.due, start_date=args.start
    )
    print(clone_text(clone.milestone.name, clone.source, clone.policy_entry, clone.github))
    return 0


async def policy_check(args: argparse.Namespace) -> int:
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


@with_database
async def demo(args: argparse.Namespace) -> int:
    from core.demo import load_demo

    names = await load_demo()
    print(f"demo loaded: {', '.join(names)}. Try `milestones status v2.0` and `milestones list`.")
    return 0
