"""`milestone`: GitHub milestones become ours (title, description, due date, state, number)."""

from __future__ import annotations

from typing import Literal

from gidgethub import routing

from core import services
from core.enums import MilestoneState
from core.models import Milestone
from integrations.github.events import (
    GitHubId,
    HandlerContext,
    MilestoneTitle,
    Model,
    Payload,
    Text,
    Timestamp,
    WebhookEvent,
    on,
)

router = routing.Router()


class GitHubMilestone(Model):
    """A milestone as webhooks and the REST API give it."""

    number: GitHubId
    title: MilestoneTitle
    description: Text | None = None
    due_on: Timestamp | None = None
    state: Literal["open", "closed"]


class MilestoneEvent(Payload):
    milestone: GitHubMilestone


async def save_github_milestone(
    repository: str, milestone: GitHubMilestone
) -> tuple[Milestone, services.MilestoneChange]:
    return await services.save_milestone(
        repository,
        milestone.title,
        target_date=milestone.due_on.date() if milestone.due_on else None,
        description=milestone.description or "",
        state=MilestoneState(milestone.state),
        github_number=milestone.number,
    )


@on(router, "milestone", action="created")
@on(router, "milestone", action="edited")
@on(router, "milestone", action="opened")
@on(router, "milestone", action="closed")
async def milestone_saved(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(MilestoneEvent)
    saved, change = await save_github_milestone(payload.repository_name, payload.milestone)
    return f"milestone {saved.name}: {change.verdict.status.value}"


@on(router, "milestone", action="deleted")
async def milestone_deleted(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(MilestoneEvent)
    closed = await services.unlink_github_milestone(payload.repository_name, payload.milestone.number)
    return f"milestone {closed.name} closed, its GitHub milestone deleted" if closed else "milestone was never recorded"
