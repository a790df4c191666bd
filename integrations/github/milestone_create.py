"""A clone's GitHub milestone: created on GitHub when the milestone was cloned in a repository
connected to GitHub, and recorded as its twin."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from github import GithubException, RateLimitExceededException

from core import outbox, services
from core.clock import utcnow
from core.installations import installation_for
from integrations.github.api import GitHubAccess

RATE_LIMIT_WAIT = timedelta(minutes=5)


class MilestoneCreator:
    def __init__(self, github: GitHubAccess):
        self.github = github

    async def create(self, milestone_id: int) -> str | None:
        """An outbox handler (core.outbox.GITHUB_MILESTONE_CREATE)."""
        milestone = await services.milestone_by_id(milestone_id)
        if milestone is None or milestone.github_number is not None:
            return None
        repository = milestone.repository.full_name
        installation = await installation_for(repository)
        try:
            number = await asyncio.to_thread(
                self._create, repository, installation, milestone.name, milestone.description, milestone.target_date
            )
        except RateLimitExceededException:
            raise outbox.Deferred(utcnow() + RATE_LIMIT_WAIT, "GitHub rate limit spent") from None
        await services.record_github_twin(milestone_id, number)
        return f"GitHub milestone #{number} created"

    def _create(
        self, repository: str, installation: int | None, title: str, description: str, due_on: date | None
    ) -> int:
        repo = self.github.client(repository, installation).get_repo(repository)
        fields: dict[str, object] = {"description": description} if description else {}
        if due_on is not None:
            fields["due_on"] = due_on
        try:
            return int(repo.create_milestone(title, **fields).number)  # type: ignore[arg-type]
        except GithubException as error:
            # Made already (by a person, or by an earlier attempt whose answer was lost): that
            # one is the twin.
            if error.status != 422:
                raise
            for existing in repo.get_milestones(state="all"):
                if existing.title == title:
                    return int(existing.number)
            raise
