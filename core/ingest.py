"""Storing a parsed launch: test cases, results and the milestones' test state.

Runs inside the caller's transaction, so a launch is stored whole or not at all.
Bulk rows go through raw `executemany`: building 50,000 ORM objects would cost
more than everything else together.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from core import quarantine_state, state
from core.catalog import ensure_plan, ensure_repository, lock_milestones, lock_plan, milestone_policy
from core.db import db_datetime, execute, fetch, fetch_mapping, insert_rows, placeholders
from core.defect_links import link_new_tests
from core.enums import MilestoneState
from core.junit import ParsedReport
from core.models import Launch, Milestone


@dataclass(frozen=True)
class LaunchSource:
    """Where a launch came from: a workflow run attempt, or an upload."""

    repository: str
    plan: str
    source_id: str
    attempt: int = 1
    commit_sha: str | None = None
    branch: str | None = None
    url: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # How the reports were gathered, said with the launch (an artifact missing, a file skipped).
    warnings: tuple[str, ...] = ()
    # The reports' content_digest, when known: the same source and attempt with other reports is refused.
    content_digest: str | None = None

    def __post_init__(self) -> None:
        if self.attempt < 1:
            raise ValueError("attempt must be 1 or more")
        if not self.plan.strip():
            raise ValueError("a launch needs a test plan name")


@dataclass
class StoredLaunch:
    launch: Launch
    created: bool
    # Milestones whose state this launch changed: their verdicts need a fresh look.
    milestones: list[Milestone] = field(default_factory=list)


def file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def content_digest(file_digests: Iterable[bytes]) -> str:
    """The reports of a launch, by the SHA-256 of each file's content, in order."""
    return hashlib.sha256(b"".join(file_digests)).hexdigest()


def upload_source_id(file_digests: Iterable[bytes], *context: str | None) -> str:
    """An upload's id when none is given: the same reports of the same commit are one launch.

    `file_digests` are the SHA-256 of each report's content (`file_digest`); `context` is what
    else tells launches apart (repository, plan, commit, branch).
    """
    digest = hashlib.sha256("\0".join(part or "" for part in context).encode())
    for file in file_digests:
        digest.update(file)
    return "upload:" + digest.hexdigest()[:24]


def identity_key(classname: str, name: str) -> str:
    return hashlib.blake2b(f"{classname}\0{name}".encode(), digest_size=16).hexdigest()


async def store_launch(client: BaseDBAsyncClient, report: ParsedReport, source: LaunchSource) -> StoredLaunch:
    repository = await ensure_repository(source.repository, client)
    plan = await ensure_plan(repository, source.plan.strip(), client)
    # Plan first, then its milestones: every writer takes locks in this order.
    await lock_plan(client, plan)
    existing = await Launch.get_or_none(plan=plan, source_id=source.source_id, attempt=source.attempt, using_db=client)
    if existing is not None:
        return StoredLaunch(existing, created=False)

    attempts = await Launch.filter(plan=plan, source_id=source.source_id).using_db(client)
    # A higher attempt replaces earlier ones for the gate; a late lower one never counts.
    superseded = any(other.attempt > source.attempt for other in attempts)
    replaced = [other for other in attempts if other.attempt < source.attempt and not other.superseded]
    counts = report.counts()
    launch = await Launch.create(
        using_db=client,
        repository=repository,
        plan=plan,
        source_id=source.source_id,
        attempt=source.attempt,
        superseded=superseded,
        commit_sha=source.commit_sha,
        branch=source.branch,
        url=source.url,
        started_at=source.started_at,
        finished_at=source.finished_at or datetime.now(UTC),
        files=counts["files"],
        tests=counts["tests"],
        passed=counts["passed"],
        failed=counts["failed"],
        errors=counts["errors"],
        skipped=counts["skipped"],
        flaky=counts["flaky"],
        declared=vars(report.declared),
        warnings=[*source.warnings, *report.warnings],
        content_digest=source.content_digest,
    )
    if replaced:
        await Launch.filter(id__in=[other.id for other in replaced]).using_db(client).update(superseded=True)
    results = await _store_results(client, repository.id, launch.id, report)
    if replaced:
        await _flaky_across_attempts(client, launch, [other.id for other in replaced])
    rebuild = bool(replaced)
    if superseded:
        # A late earlier attempt does not count, but its failures make the counting attempt's
        # passes flaky, as they would have had it arrived in order.
        counting = max((other for other in attempts if not other.superseded), key=lambda other: other.attempt)
        if not await _flaky_across_attempts(client, counting, [launch.id]):
            return StoredLaunch(launch, created=True)
        rebuild = True

    # A milestone closed on GitHub because it completed still takes launches: a regression reopens it.
    milestones = await Milestone.filter(
        Q(state=MilestoneState.OPEN) | Q(closed_on_complete=True), repository=repository, plans__id=plan.id
    ).using_db(client)
    await lock_milestones(client, [milestone.id for milestone in milestones])
    for milestone in milestones:
        policy = milestone_policy(milestone)
        if rebuild:
            await state.rebuild(client, milestone, policy)
        else:
            bits = state.plan_bits(await state.milestone_plan_ids(client, milestone.id))
            row = state.LaunchRow(launch.id, plan.id, launch.branch)
            if await _arrived_late(client, milestone, launch):
                finished_at = db_datetime(launch.finished_at)
                await state.apply_late_launch(client, milestone, policy, row, finished_at, bits, results.test_ids)
            else:
                await state.apply_launch(client, milestone, policy, row, bits, results.new_ids)
            await state.refresh_required(client, milestone, policy)
        await quarantine_state.refresh(client, milestone, policy)
    return StoredLaunch(launch, created=True, milestones=list(milestones))


async def _flaky_across_attempts(client: BaseDBAsyncClient, launch: Launch, earlier: list[int]) -> bool:
    """A test that failed in an earlier attempt of the run and passes in this one is flaky: it is
    marked so, and the flaky rule hears of it, instead of the pass simply replacing the failure.
    Returns whether that marked any."""
    await execute(
        client,
        "UPDATE test_result SET flaky = TRUE, retried = TRUE WHERE launch_id = ? AND status = 'passed' "
        f"AND test_case_id IN (SELECT test_case_id FROM test_result WHERE launch_id IN ({placeholders(len(earlier))}) "
        "AND status IN ('failed', 'error'))",
        [launch.id, *earlier],
    )
    [(flaky,)] = await fetch(
        client, "SELECT COUNT(*) FROM test_result WHERE launch_id = ? AND flaky = TRUE", [launch.id]
    )
    if flaky == launch.flaky:
        return False
    launch.flaky = flaky
    await launch.save(using_db=client, update_fields=["flaky"])
    return True


async def _arrived_late(client: BaseDBAsyncClient, milestone: Milestone, launch: Launch) -> bool:
    """Whether a launch that finished later is already in: then the launch's place in history matters."""
    rows = await fetch(
        client,
        "SELECT 1 FROM launch l JOIN milestone_plan mp ON mp.testplan_id = l.plan_id "
        "WHERE mp.milestone_id = ? AND l.superseded = FALSE AND l.id <> ? AND l.finished_at > ? LIMIT 1",
        [milestone.id, launch.id, db_datetime(launch.finished_at)],
    )
    return bool(rows)


class StoredResults(NamedTuple):
    # The launch's test cases, ascending; 8 bytes each, as a launch may hold a hundred thousand.
    test_ids: array[int]
    # Those new to the repository.
    new_ids: list[int]


async def _store_results(
    client: BaseDBAsyncClient, repository_id: int, launch_id: int, report: ParsedReport
) -> StoredResults:
    """Store the launch's results."""
    if not report.cases:
        return StoredResults(array("q"), [])
    keys = [identity_key(*key) for key in report.cases]
    case_ids = await _case_ids(client, repository_id)
    missing = [(key, case) for key, case in zip(keys, report.cases.values(), strict=True) if key not in case_ids]
    created: list[int] = []
    if missing:
        now = db_datetime(datetime.now(UTC))
        await insert_rows(
            client,
            "test_case",
            ("repository_id", "identity_key", "classname", "name", "file", "suite", "created_at"),
            # In key order: two launches bringing the same new tests (of two plans, which do not
            # wait for each other) then take the unique index's locks in one order, not in a cycle.
            sorted(
                (repository_id, key, case.classname, case.name, case.file, case.suite, now) for key, case in missing
            ),
            unless_present=("repository_id", "identity_key"),
        )
        case_ids = await _case_ids(client, repository_id)
        await link_new_tests(
            client, repository_id, [(case_ids[key], case.classname, case.name, case.file) for key, case in missing]
        )
        created = [case_ids[key] for key, _ in missing]
        del missing
    # In the order of the (test case, launch) index, whose pages are then each written once.
    # Plain values only: SQLite's driver binds an exact str, int or float at once, but for an
    # enum or a bool it first looks for adapters, raising (and formatting) two AttributeErrors
    # per value, which made up a third of the insert.
    flag = int if client.capabilities.dialect == "sqlite" else bool
    rows = [
        (
            launch_id,
            case_ids[key],
            case.status.value,
            case.duration,
            case.message,
            flag(case.flaky),
            flag(case.retried),
            case.cause.signature if case.cause else None,
            case.cause.frame if case.cause else None,
        )
        for key, case in zip(keys, report.cases.values(), strict=True)
    ]
    del keys, case_ids
    rows.sort(key=itemgetter(1))
    await insert_rows(
        client,
        "test_result",
        ("launch_id", "test_case_id", "status", "duration", "message", "flaky", "retried", "cause", "cause_frame"),
        rows,
    )
    return StoredResults(array("q", (row[1] for row in rows)), created)


async def _case_ids(client: BaseDBAsyncClient, repository_id: int) -> dict[str, int]:
    return await fetch_mapping(
        client, "SELECT identity_key, id FROM test_case WHERE repository_id = ?", [repository_id]
    )
