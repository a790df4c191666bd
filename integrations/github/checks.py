"""Publishing the gate on pull requests: one check run per pull request and milestone, edited in
place as verdicts change (a commit status instead with a token), and the policy file's check.

Work comes from the outbox (`core.outbox`): changes mark the pull requests whose checks
they make stale, and a publisher takes each pull request once it has settled, so a
burst of changes is one update, and one publisher at a time writes a pull request's
checks, which is what keeps a check from being created twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from github import Github, GithubException, RateLimitExceededException
from github.Repository import Repository as GitHubRepository

from core import outbox, services
from core.clock import utcnow
from core.enums import STOPPED_INSTALLATION, CheckKind
from core.gate import Verdict
from core.installations import installation_for, installation_status
from core.models import GateCheck, Milestone, Outbox, PullRequest
from core.policy import DEFAULT_SOURCE
from core.policy_file import load_policy
from core.pull_requests import (
    CONFIG_SLOT,
    files_checked,
    gate_slot,
    milestones_of,
    open_pull_request,
    published_checks,
    refresh_open_checks,
    retire_check,
    save_published,
)
from core.report import page_section
from integrations.github.api import GitHubAccess
from integrations.github.check_output import (
    GATE_PREFIX,
    STATUS_PREFIX,
    CheckOutput,
    StatusOutput,
    config_check,
    config_status,
    gate_check,
    gate_status,
    left_milestone_check,
    left_milestone_status,
)
from integrations.github.policy_file import fetch_policy

log = logging.getLogger(__name__)

# Requests kept back for reading webhooks' data (runs, artifacts, policy files) when the hourly limit runs low.
RATE_RESERVE = 200
BATCH = 20
REFRESH_EVERY = timedelta(hours=1)
SETTLING = outbox.Settling()

# (repository, milestone, section of the page or None) -> the page's signed URL, if pages are on.
PageUrl = Callable[[str, str, "str | None"], "str | None"]


class RateLimited(outbox.Deferred):
    def __init__(self, reset: datetime):
        super().__init__(reset, f"GitHub rate limit low until {reset:%H:%M:%S} UTC")


@dataclass
class Target:
    """The pull request being published, and how to write to its repository."""

    pull: PullRequest
    repository: str
    kind: CheckKind
    client: Github
    repo: GitHubRepository
    claim: Outbox | None = None

    @property
    def repository_url(self) -> str | None:
        # The pull request's page lives under the repository's (github.com or an Enterprise host).
        url = self.pull.url or ""
        return url.rsplit("/pull/", 1)[0] if "/pull/" in url else None


class CheckPublisher(outbox.Runner):
    """Takes settled pull requests from the outbox and brings their checks up to date."""

    def __init__(
        self,
        github: GitHubAccess,
        *,
        page_url: PageUrl = lambda repository, name, section: None,
        settling: outbox.Settling = SETTLING,
        lease: timedelta = timedelta(minutes=5),
        poll_seconds: float = 5.0,
    ):
        super().__init__(
            {outbox.PULL_REQUEST_CHECKS: self._publish_item},
            settling=settling,
            lease=lease,
            poll_seconds=poll_seconds,
            batch=BATCH,
            # Days left, overdue and the forecast move with the calendar, not only with events.
            periodic=(REFRESH_EVERY, refresh_open_checks),
        )
        self.github = github
        self.page_url = page_url

    async def _publish_item(self, item: Outbox) -> str | None:
        # One verdict per milestone for the whole batch.
        return await self.publish(item.subject, forced=item.forced, verdicts=self.batch_memo, claim=item)

    async def publish(
        self,
        pull_id: int,
        *,
        forced: bool = False,
        verdicts: dict[int, Verdict] | None = None,
        claim: Outbox | None = None,
    ) -> str | None:
        """Bring one pull request's checks up to date; returns what was done, for the log.

        `claim`: the outbox item this runs under; a check run is created only while it holds.
        """
        verdicts = {} if verdicts is None else verdicts
        pull = await open_pull_request(pull_id)
        if pull is None or self.github.mode is None:
            return None
        installation = await installation_for(pull.repository.full_name)
        if installation is not None and await installation_status(installation) in STOPPED_INSTALLATION:
            return f"installation {installation} is not active: nothing published"
        target = await self._target(pull, installation, claim)
        milestones = await milestones_of(pull)
        published = await published_checks(pull.id)
        notes = []
        for milestone in milestones:
            if milestone.id not in verdicts:
                verdicts[milestone.id] = await services.milestone_verdict(milestone)
            verdict = verdicts[milestone.id]
            page = self.page_url(target.repository, milestone.name, page_section(verdict))
            output: CheckOutput | StatusOutput
            if target.kind is CheckKind.CHECK_RUN:
                output = gate_check(verdicts[milestone.id], details_url=page, repository_url=target.repository_url)
            else:
                output = gate_status(verdicts[milestone.id], page)
            slot = gate_slot(milestone.id)
            notes.append(await self._write(target, slot, milestone, output, published.get(slot), forced))
        current = {gate_slot(milestone.id) for milestone in milestones}
        for slot, check in published.items():
            if check.milestone_id is not None and check.active and slot not in current:
                notes.append(await self._retire(target, check))
        if pull.files_checked_sha != pull.head_sha:
            notes.append(await self._check_config(target, published.get(CONFIG_SLOT), forced))
        return "; ".join(note for note in notes if note) or None

    async def _target(self, pull: PullRequest, installation: int | None, claim: Outbox | None) -> Target:
        repository = pull.repository.full_name
        client = await asyncio.to_thread(self.github.client, repository, installation)
        await self._check_rate_limit(client)
        kind = CheckKind.CHECK_RUN if self.github.mode == "app" else CheckKind.STATUS
        return Target(pull, repository, kind, client, client.get_repo(repository), claim)

    @staticmethod
    async def _check_rate_limit(client: Github) -> None:
        """Leave the last requests of the hour to reading webhooks' data; wait for the reset instead."""
        requester = client.requester
        remaining, limit = requester.rate_limiting
        stale = limit > 0 and requester.rate_limiting_resettime <= time.time()
        if limit < 0 or stale:
            try:
                # Free of charge, and it tells where the limit stands (nothing has, or it was reset).
                await asyncio.to_thread(client.get_rate_limit)
            except GithubException as error:
                if error.status != 404:
                    raise
                return  # GitHub Enterprise Server with rate limiting off
            remaining, limit = requester.rate_limiting
        if limit > 0 and remaining < RATE_RESERVE:
            reset = datetime.fromtimestamp(requester.rate_limiting_resettime, UTC)
            raise RateLimited(max(reset, utcnow() + timedelta(seconds=5)))

    async def _write(
        self,
        target: Target,
        slot: str,
        milestone: Milestone | None,
        output: CheckOutput | StatusOutput,
        existing: GateCheck | None,
        forced: bool = False,
    ) -> str | None:
        head = target.pull.head_sha
        same_commit = existing is not None and existing.head_sha == head and existing.kind is target.kind
        current = existing if same_commit else None  # the check on this head, to edit in place
        if current is not None and current.active and current.digest == output.digest and not forced:
            return None
        github_id = current.github_id if current is not None else None
        follow_up: list = []
        if isinstance(output, StatusOutput):
            await self._call(target, _post_status, target.repo, head, output)
            action = "status"
        elif github_id is not None:
            try:
                await self._call(target, _edit_check_run, target.repo, github_id, output)
                action = "updated"
            except GithubException as error:
                if error.status != 404:
                    raise
                # The check run is gone (the repository moved, say): start a new one.
                github_id, follow_up = await self._create(target, output)
                action = "created"
        else:
            github_id, follow_up = await self._create(target, output)
            action = "created"
        name = output.name if isinstance(output, CheckOutput) else output.context
        await save_published(
            target.pull.id,
            slot,
            milestone_id=milestone.id if milestone else None,
            name=name,
            kind=target.kind,
            head_sha=head,
            github_id=github_id,
            digest=output.digest,
            conclusion=output.conclusion,
        )
        if follow_up:
            assert isinstance(output, CheckOutput) and github_id is not None
            await self._call(target, _add_annotations, target.repo, github_id, output, follow_up)
        return f"{action} {name}: {output.conclusion}"

    async def _create(self, target: Target, output: CheckOutput) -> tuple[int, list]:
        """Create the check run, or take over the one a publisher that stopped mid-way left on the head.

        Returns its id and the annotation batches still to send (at most 50 go with each request).
        """
        if target.claim is not None and not await outbox.holds(target.claim):
            raise outbox.ClaimLost(f"pull request {target.pull.id}: another publisher took over")
        batches = output.annotation_batches()
        found = await self._call(
            target, _find_check_run, target.repo, target.pull.head_sha, output.name, self.github.app_id
        )
        if found is not None:
            await self._call(target, _edit_check_run, target.repo, found, output)
            return found, batches
        first = batches[0] if batches else []
        return await self._call(target, _create_check_run, target.repo, target.pull.head_sha, output, first), batches[
            1:
        ]

    async def _retire(self, target: Target, check: GateCheck) -> str:
        """The pull request left the milestone: its check says so, if it is on the current head."""
        name = check.name.removeprefix(GATE_PREFIX).removeprefix(STATUS_PREFIX)
        note = f"{check.name}: left the milestone"
        digest, conclusion = check.digest, check.conclusion
        if check.head_sha == target.pull.head_sha:
            output: CheckOutput | StatusOutput = (
                left_milestone_check(name) if check.kind is CheckKind.CHECK_RUN else left_milestone_status(name)
            )
            try:
                if isinstance(output, StatusOutput):
                    await self._call(target, _post_status, target.repo, check.head_sha, output)
                else:
                    assert check.github_id is not None
                    await self._call(target, _edit_check_run, target.repo, check.github_id, output)
                digest, conclusion = output.digest, output.conclusion
            except GithubException as error:
                if error.status not in (403, 404):
                    raise
                # Gone, or written by a mode this service no longer runs in: nothing left to say.
                note += f" (its check could not be edited: GitHub answered {error.status})"
        await retire_check(check, digest=digest, conclusion=conclusion)
        return note

    async def _check_config(self, target: Target, existing: GateCheck | None, forced: bool = False) -> str | None:
        """A pull request that changes the policy file gets a check validating it at its head."""
        pull = target.pull
        change = await self._call(target, _policy_file_change, target.repo, pull.number)
        note = None
        if change is not None:
            text = (
                None
                if change == "removed"
                else await self._call(target, fetch_policy, target.client, target.repository, pull.head_sha)
            )
            load = None if text is None else load_policy(text)
            output: CheckOutput | StatusOutput = (
                config_check(load, DEFAULT_SOURCE, pull.head_sha)
                if target.kind is CheckKind.CHECK_RUN
                else config_status(load, DEFAULT_SOURCE)
            )
            note = await self._write(target, CONFIG_SLOT, None, output, existing, forced)
        await files_checked(pull.id, pull.head_sha)
        return note

    async def _call(self, target: Target, function, *args):
        """A PyGithub call off the event loop; a rate limit defers the pull request until it resets."""
        try:
            return await asyncio.to_thread(function, *args)
        except RateLimitExceededException:
            # PyGithub waited as long as it may (GitHubAccess caps it) and gave up.
            reset = datetime.fromtimestamp(target.client.requester.rate_limiting_resettime, UTC)
            raise RateLimited(max(reset, utcnow() + timedelta(seconds=60))) from None
        finally:
            self.github.note_rate_limit(target.client)


# PyGithub calls (synchronous) -------------------------------------------------


def _create_check_run(repo: GitHubRepository, head_sha: str, output: CheckOutput, annotations: list) -> int:
    body = output.request(annotations)
    run = repo.create_check_run(
        name=body["name"],
        head_sha=head_sha,
        status="completed",
        conclusion=body["conclusion"],
        completed_at=utcnow(),
        output=body["output"],
        **{key: body[key] for key in ("details_url", "actions") if key in body},
    )
    return run.id


def _add_annotations(repo: GitHubRepository, check_run_id: int, output: CheckOutput, batches: list) -> None:
    run = repo.get_check_run(check_run_id)
    for batch in batches:
        run.edit(output={"title": output.title, "summary": output.summary, "annotations": batch})


def _find_check_run(repo: GitHubRepository, head_sha: str, name: str, app_id: int | None) -> int | None:
    """Our check run of this name on the commit, if one was created but never recorded."""
    for run in repo.get_commit(head_sha).get_check_runs(check_name=name):
        if app_id is None or run._rawData.get("app", {}).get("id") == app_id:
            return run.id
    return None


def _edit_check_run(repo: GitHubRepository, check_run_id: int, output: CheckOutput) -> None:
    # Annotations add up on GitHub: an edit sends none, so they are never repeated.
    body = output.request()
    repo.get_check_run(check_run_id).edit(
        name=body["name"],
        status="completed",
        conclusion=body["conclusion"],
        completed_at=utcnow(),
        output=body["output"],
        actions=body.get("actions", []),  # a check that left its milestone loses Re-evaluate
        **({"details_url": body["details_url"]} if "details_url" in body else {}),
    )


def _post_status(repo: GitHubRepository, sha: str, output: StatusOutput) -> None:
    repo.get_commit(sha).create_status(**output.request())


def _policy_file_change(repo: GitHubRepository, number: int) -> str | None:
    """How the pull request changes the policy file ("added", "modified", "removed"...), None if it does not."""
    for changed in repo.get_pull(number).get_files():
        if DEFAULT_SOURCE in (changed.filename, changed.previous_filename):
            return "removed" if changed.filename != DEFAULT_SOURCE else changed.status
    return None
