"""Launches: a test report stored whole, and the gates it moves."""

from __future__ import annotations

from dataclasses import dataclass, field

from tortoise.transactions import in_transaction

from core.ingest import LaunchSource, store_launch
from core.junit import ParsedReport
from core.names import check_repository_name
from core.services.changes import MilestoneChange, after_change


class LaunchConflict(ValueError):
    """The source and attempt of a launch already recorded from other reports."""


@dataclass
class LaunchOutcome:
    launch_id: int
    created: bool
    superseded: bool
    counts: dict[str, int]
    changes: list[MilestoneChange] = field(default_factory=list)


async def record_launch(report: ParsedReport, source: LaunchSource) -> LaunchOutcome:
    """Store a launch whole or not at all; the same source and attempt twice changes nothing.

    LaunchConflict when that source and attempt were recorded from other reports (when both
    digests are known): two jobs sharing a source would otherwise lose one's results unseen.
    """
    check_repository_name(source.repository)
    async with in_transaction() as client:
        stored = await store_launch(client, report, source)
        recorded = stored.launch.content_digest
        if not stored.created and source.content_digest and recorded and recorded != source.content_digest:
            raise LaunchConflict(
                f"plan {source.plan}, source {source.source_id}, attempt {source.attempt} was recorded "
                "from other reports; give each job (or each run of it) its own source, or a higher attempt"
            )
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
