"""`close_on_complete`: a milestone's GitHub milestone is closed when the gate completes, and
opened again if it reopens (only one this service closed). A milestone closed, reopened or
renamed here (`milestones milestone close|reopen|rename`) is mirrored on GitHub."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from github import RateLimitExceededException

from core import outbox, services
from core.catalog import milestone_policy
from core.clock import utcnow
from core.enums import MilestoneState
from core.installations import installation_for
from integrations.github.api import GitHubAccess

RATE_LIMIT_WAIT = timedelta(minutes=5)


class MilestoneCloser:
    def __init__(self, github: GitHubAccess):
        self.github = github

    async def sync(self, milestone_id: int) -> str | None:
        """An outbox handler (core.outbox.GITHUB_MILESTONE_STATE)."""
        milestone = await services.milestone_by_id(milestone_id)
        if milestone is None or milestone.github_number is None or not milestone_policy(milestone).close_on_complete:
            return None
        complete = milestone.completed_at is not None
        if complete == milestone.closed_on_complete:
            return None
        repository = milestone.repository.full_name
        installation = await installation_for(repository)
        state = "closed" if complete else "open"
        try:
            await asyncio.to_thread(self._set_state, repository, installation, milestone.github_number, state)
        except RateLimitExceededException:
            # PyGithub waited as long as it may: not this work's failure, so it waits for the reset.
            raise outbox.Deferred(utcnow() + RATE_LIMIT_WAIT, "GitHub rate limit spent") from None
        await services.github_milestone_closed(milestone_id, complete)
        return f"GitHub milestone #{milestone.github_number} {state}"

    async def mirror(self, milestone_id: int) -> str | None:
        """An outbox handler (core.outbox.GITHUB_MILESTONE_EDIT): GitHub's title and state made ours."""
        milestone = await services.milestone_by_id(milestone_id)
        if milestone is None or milestone.github_number is None:
            return None
        repository = milestone.repository.full_name
        installation = await installation_for(repository)
        closed = milestone.state is MilestoneState.CLOSED or milestone.closed_on_complete
        state = "closed" if closed else "open"
        try:
            await asyncio.to_thread(
                self._set_state, repository, installation, milestone.github_number, state, milestone.name
            )
        except RateLimitExceededException:
            raise outbox.Deferred(utcnow() + RATE_LIMIT_WAIT, "GitHub rate limit spent") from None
        return f"GitHub milestone #{milestone.github_number} {state} as {milestone.name}"

    def _set_state(
        self, repository: str, installation: int | None, number: int, state: str, title: str | None = None
    ) -> None:
        github_milestone = self.github.client(repository, installation).get_repo(repository).get_milestone(number)
        github_milestone.edit(title or github_milestone.title, state=state)
