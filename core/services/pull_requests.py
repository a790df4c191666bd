"""Pull requests: their head, base and GitHub milestone, which decide the checks they are due."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tortoise.transactions import in_transaction

from core import outbox
from core.catalog import ensure_repository, locked_or_first
from core.models import PullRequest
from core.pull_requests import OPEN
from core.services.changes import older
from core.services.policies import github_milestone, repository_policy


@dataclass(frozen=True)
class PullRequestFacts:
    number: int
    head_sha: str
    base_ref: str
    title: str = ""
    url: str | None = None
    state: Literal["open", "closed"] = "open"
    draft: bool = False
    milestone_number: int | None = None
    milestone_title: str | None = None
    updated_at: datetime | None = None


async def record_pull_request(repository: str, facts: PullRequestFacts, *, refresh: bool = False) -> PullRequest | None:
    """Keep a pull request's head, base and GitHub milestone; None when the event is older than what is stored.

    An open pull request whose head, base or milestone moved (or with `refresh`) is
    due new checks.
    """
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        pull = await locked_or_first(client, repo, PullRequest, number=facts.number)
        if pull is not None and older(facts.updated_at, pull.source_updated_at):
            return None
        pull = pull or PullRequest(repository=repo, number=facts.number)
        before = (pull.head_sha, pull.base_ref, pull.milestone_id) if pull.id else None
        pull.milestone = await github_milestone(
            client, repo, repository_policy(repo), facts.milestone_number, facts.milestone_title
        )
        if pull.id and pull.base_ref != facts.base_ref:
            pull.files_checked_sha = None  # against another base, other files differ
        pull.title = facts.title
        pull.url = facts.url
        pull.state = facts.state
        pull.draft = facts.draft
        pull.head_sha = facts.head_sha
        pull.base_ref = facts.base_ref
        pull.source_updated_at = facts.updated_at or pull.source_updated_at
        await pull.save(using_db=client)
        moved = before != (pull.head_sha, pull.base_ref, pull.milestone_id)
        if pull.state == OPEN and (refresh or moved):
            await outbox.mark(client, outbox.PULL_REQUEST_CHECKS, [pull.id])
    return pull
