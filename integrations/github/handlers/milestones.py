"""`milestone`: GitHub milestones become ours (title, description, due date, state, number)."""

from __future__ import annotations

from gidgethub import routing, sansio

from core import services
from core.enums import MilestoneState
from integrations.github.events import HandlerContext, on, parse_date, repository_of

router = routing.Router()


@on(router, "milestone", action="created")
@on(router, "milestone", action="edited")
@on(router, "milestone", action="opened")
@on(router, "milestone", action="closed")
async def milestone_saved(event: sansio.Event, context: HandlerContext) -> str:
    milestone = event.data["milestone"]
    saved, change = await services.save_milestone(
        repository_of(event),
        milestone["title"],
        target_date=parse_date(milestone.get("due_on")),
        description=milestone.get("description") or "",
        state=MilestoneState(milestone["state"]),
        github_number=milestone["number"],
    )
    return f"milestone {saved.name}: {change.verdict.status.value}"


@on(router, "milestone", action="deleted")
async def milestone_deleted(event: sansio.Event, context: HandlerContext) -> str:
    milestone = event.data["milestone"]
    closed = await services.unlink_github_milestone(repository_of(event), milestone["number"])
    return f"milestone {closed.name} closed, its GitHub milestone deleted" if closed else "milestone was never recorded"
