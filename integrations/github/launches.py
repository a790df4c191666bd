"""A finished workflow run becomes one launch per test plan it feeds, from its artifacts."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import tempfile
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, cast

from github import Github

from core import services
from core.ingest import LaunchSource
from core.junit import ParsedReport, ReportError
from core.policy import PlanConfig
from integrations.github.artifacts import ArtifactGone, UnsafeArchive, download_artifact, read_reports
from integrations.github.events import HandlerContext, Unprocessable
from integrations.limits import MiB

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunFacts:
    id: int
    attempt: int
    name: str
    path: str
    head_sha: str | None
    head_branch: str | None
    url: str | None
    started_at: datetime | None
    finished_at: datetime | None
    # The repository whose branch ran: a fork's for pull requests from forks.
    head_repository: str | None


@dataclass(frozen=True)
class ArtifactRef:
    id: int
    name: str
    download_url: str
    expired: bool


def _list_artifacts(client: Github, repository: str, run_id: int) -> list[ArtifactRef]:
    run = client.get_repo(repository).get_workflow_run(run_id)
    return [
        ArtifactRef(artifact.id, artifact.name, artifact.archive_download_url, artifact.expired)
        for artifact in run.get_artifacts()
    ]


async def ingest_run(
    context: HandlerContext,
    repository: str,
    installation_id: int | None,
    run: RunFacts,
    plans: dict[str, PlanConfig],
) -> list[str]:
    """Record the run as a launch of each plan; returns a line per launch for the record."""
    client = await asyncio.to_thread(context.github.client, repository, installation_id)
    artifacts = await asyncio.to_thread(_list_artifacts, client, repository, run.id)
    context.github.note_rate_limit(client)
    token = await asyncio.to_thread(context.github.token, client)
    notes = []
    with contextlib.ExitStack() as stack:
        downloads = _Downloads(context, token, stack)
        for plan, config in plans.items():
            report = ParsedReport()
            warnings = await _gather(context, downloads, artifacts, config.artifacts, report)
            for warning in warnings:
                log.warning("%s run %s, plan %s: %s", repository, run.id, plan, warning)
            source = LaunchSource(
                repository=repository,
                plan=plan,
                source_id=f"run:{run.id}",
                attempt=run.attempt,
                commit_sha=run.head_sha,
                branch=run.head_branch,
                url=run.url,
                started_at=run.started_at,
                finished_at=run.finished_at,
                warnings=tuple(warnings),
            )
            outcome = await services.record_launch(report, source)
            counts = outcome.counts
            seen = "" if outcome.created else ", already recorded"
            notes.append(
                f"plan {plan}: {counts['tests']} tests, {counts['failed'] + counts['errors']} failing{seen}"
                + (f" ({len(warnings)} warnings)" if warnings else "")
            )
    return notes


class _Downloads:
    """Each artifact of the run fetched once, though several plans' patterns may match it."""

    def __init__(self, context: HandlerContext, token: str, stack: contextlib.ExitStack):
        self._context = context
        self._token = token
        self._stack = stack
        self._archives: dict[int, BinaryIO | None] = {}

    async def open(self, artifact: ArtifactRef) -> BinaryIO | None:
        """The artifact's zip from its start, or None when GitHub no longer has it."""
        if artifact.id not in self._archives:
            # Small artifacts stay in memory; large ones spill to a temporary file.
            spool = cast(BinaryIO, self._stack.enter_context(tempfile.SpooledTemporaryFile(max_size=32 * MiB)))
            archive: BinaryIO | None = spool
            try:
                await download_artifact(
                    self._context.http,
                    artifact.download_url,
                    self._token,
                    spool,
                    self._context.limits.max_transfer_bytes,
                )
            except ArtifactGone:
                archive = None
            self._archives[artifact.id] = archive
        archive = self._archives[artifact.id]
        if archive is not None:
            archive.seek(0)
        return archive


async def _gather(
    context: HandlerContext, downloads: _Downloads, artifacts: list[ArtifactRef], pattern: str, report: ParsedReport
) -> list[str]:
    matching = [artifact for artifact in artifacts if fnmatch.fnmatchcase(artifact.name, pattern)]
    if not matching:
        names = ", ".join(artifact.name for artifact in artifacts) or "none"
        return [f"no artifact matches '{pattern}' (artifacts: {names}); recorded with no results"]
    warnings = []
    for artifact in matching:
        if artifact.expired:
            warnings.append(f"artifact {artifact.name} has expired")
            continue
        try:
            archive = await downloads.open(artifact)
            if archive is None:
                warnings.append(f"artifact {artifact.name} is gone (expired or deleted)")
                continue
            warnings += await asyncio.to_thread(read_reports, archive, artifact.name, report, context.limits)
        except (UnsafeArchive, ReportError) as error:
            raise Unprocessable(str(error)) from error
    return warnings
