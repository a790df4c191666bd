"""Launches: a test report stored whole, and the gates it moves."""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.transactions import in_transaction

from core.ingest import LaunchSource, store_launch
from core.junit import ParsedReport
from core.names import check_repository_name
from core.services.changes import MilestoneChange, after_change


@dataclass
class LaunchOutcome:
    launch_id: int
    created: bool
    superseded: bool
    counts: dict[str, int]
    changes: list[MilestoneChange] = field(default_factory=list)


async def record_launch(report: ParsedReport, source: LaunchSource) -> LaunchOutcome:
    """Store a launch whole or not at all; the same source and attempt twice changes nothing."""
    check_repository_name(source.repository)
    async with in_transaction() as client:
        stored = await store_launch(client, report, source)
        at = stored.launch.finished_at
        changes = [await after_change(client, milestone, at) for milestone in stored.milestones]
    launch = stored.launch
    counts = {
        "files": launch.files,
        "tests": launch.tests,
        "passed": launch.passed,
        "failed": launch.failed,
        "errors": launch.errors,
        "skipped": launch.skipped,
        "flaky": launch.flaky,
    }
    return LaunchOutcome(launch.id, stored.created, launch.superseded, counts, changes)
