"""What core's `milestones` commands do; `core/cli.py` declares them and imports this
module only when one of them runs."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from core import services
from core.cli import UsageError, with_database
from core.db import database
from core.db import migrate as migrate_database
from core.ingest import LaunchSource, content_digest, file_digest, upload_source_id
from core.junit import ParsedReport, parse_reports
from core.lifecycle import LIFECYCLE_TITLE
from core.output import print_json, progress
from core.report import STATUS_TITLE, clone_text
from core.settings import get_settings
from core.wording import launch_counts, plural

if TYPE_CHECKING:
    from core.output import Stages


# Reports this large (about 5,000 test cases) get a progress bar on a terminal.
PROGRESS_FROM_BYTES = 1024 * 1024


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
        bar = progress(args, "reading reports", size)
    with bar as stages:
        # A report is a hundred thousand objects and no cycle: the cyclic collector would walk
        # them again and again while they are made (a fifth of the parse), and while they are stored.
        gc.disable()
        try:
            report = parse_reports(files, progress=stages.advance if stages else None)
        finally:
            gc.freeze()
            gc.enable()
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
    from core.policy_file import load_policy  # the YAML reader, which no other command here needs

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
async def demo(args: argparse.Namespace) -> int:
    from core.demo import load_demo

    names = await load_demo()
    print(f"demo loaded: {', '.join(names)}. Try `milestones status v2.0` and `milestones list`.")
    return 0
