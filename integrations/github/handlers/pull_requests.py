"""`pull_request`: which milestones each pull request ships in, and when its gate checks are due."""

from __future__ import annotations

from gidgethub import routing, sansio

from core import services
from integrations.github.events import HandlerContext, on, parse_time, repository_of

router = routing.Router()

# A new or newly ready head always gets its checks written, even if nothing else moved;
# other actions (edited, milestoned, demilestoned...) do when the base or milestone moved.
REFRESH_ACTIONS = {"opened", "reopened", "synchronize", "ready_for_review"}


def pull_request_facts(pull: dict) -> services.PullRequestFacts:
    milestone = pull.get("milestone") or {}
    return services.PullRequestFacts(
        number=pull["number"],
        head_sha=pull["head"]["sha"],
        base_ref=pull["base"]["ref"],
        title=pull.get("title") or "",
        url=pull.get("html_url"),
        state=pull["state"],
        draft=bool(pull.get("draft")),
        milestone_number=milestone.get("number"),
        milestone_title=milestone.get("title"),
        updated_at=parse_time(pull.get("updated_at")),
    )


@on(router, "pull_request")
async def pull_request_changed(event: sansio.Event, context: HandlerContext) -> str:
    facts = pull_request_facts(event.data["pull_request"])
    refresh = event.data.get("action") in REFRESH_ACTIONS
    recorded = await services.record_pull_request(repository_of(event), facts, refresh=refresh)
    if recorded is None:
        return f"pull request #{facts.number}: older than the stored state, not applied"
    return f"pull request #{facts.number} into {facts.base_ref}"
