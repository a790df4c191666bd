"""`pull_request`: which milestones each pull request ships in, and when its gate checks are due."""

from __future__ import annotations

from typing import Literal

from gidgethub import routing

from core import services
from integrations.github.events import (
    GitHubId,
    GitRef,
    HandlerContext,
    MilestoneRef,
    Model,
    Payload,
    Sha,
    Text,
    Timestamp,
    Url,
    WebhookEvent,
    on,
)

router = routing.Router()

# A new or newly ready head always gets its checks written, even if nothing else moved;
# other actions (edited, milestoned, demilestoned...) do when the base or milestone moved.
REFRESH_ACTIONS = {"opened", "reopened", "synchronize", "ready_for_review"}


class Head(Model):
    sha: Sha


class Base(Model):
    ref: GitRef


class GitHubPullRequest(Model):
    """A pull request as webhooks and the REST API give it."""

    number: GitHubId
    head: Head
    base: Base
    title: Text | None = None
    html_url: Url | None = None
    state: Literal["open", "closed"]
    draft: bool | None = None
    milestone: MilestoneRef | None = None
    updated_at: Timestamp | None = None

    def facts(self) -> services.PullRequestFacts:
        return services.PullRequestFacts(
            number=self.number,
            head_sha=self.head.sha,
            base_ref=self.base.ref,
            title=self.title or "",
            url=self.html_url,
            state=self.state,
            draft=bool(self.draft),
            milestone_number=self.milestone.number if self.milestone else None,
            milestone_title=self.milestone.title if self.milestone else None,
            updated_at=self.updated_at,
        )


class PullRequestEvent(Payload):
    pull_request: GitHubPullRequest


@on(router, "pull_request")
async def pull_request_changed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(PullRequestEvent)
    facts = payload.pull_request.facts()
    refresh = event.action in REFRESH_ACTIONS
    recorded = await services.record_pull_request(payload.repository_name, facts, refresh=refresh)
    if recorded is None:
        return f"pull request #{facts.number}: older than the stored state, not applied"
    return f"pull request #{facts.number} into {facts.base_ref}"
