"""`issues`: every issue event updates the defect it is (or stops being)."""

from __future__ import annotations

from gidgethub import routing, sansio

from core import services
from integrations.github.events import HandlerContext, on, parse_time, repository_of

router = routing.Router()

# Deleted and transferred issues leave this repository; pinning, locking and
# assignment change nothing a defect records.
ACTIONS = (
    "opened", "edited", "labeled", "unlabeled", "milestoned", "demilestoned",
    "closed", "reopened", "deleted", "transferred",
)  # fmt: skip


def issue_facts(issue: dict, *, gone: bool = False) -> services.IssueFacts:
    milestone = issue.get("milestone") or {}
    return services.IssueFacts(
        number=issue["number"],
        title=issue.get("title") or "",
        labels=[label["name"] for label in issue.get("labels") or []],
        state=issue["state"],
        state_reason=issue.get("state_reason"),
        url=issue.get("html_url"),
        milestone_title=milestone.get("title"),
        milestone_number=milestone.get("number"),
        updated_at=parse_time(issue.get("updated_at")),
        created_at=parse_time(issue.get("created_at")),
        closed_at=parse_time(issue.get("closed_at")),
        deleted=gone,
    )


async def issue_changed(event: sansio.Event, context: HandlerContext) -> str:
    facts = issue_facts(event.data["issue"], gone=event.data["action"] in ("deleted", "transferred"))
    outcome = await services.upsert_defect(repository_of(event), facts)
    if not outcome.applied:
        return f"issue #{facts.number}: older than the stored state, not applied"
    defect = outcome.defect
    assert defect is not None
    kind = f"defect, severity {defect.severity.value}, {defect.state.value}" if defect.counts else "not a defect"
    return f"issue #{facts.number}: {kind}"


for action in ACTIONS:
    on(router, "issues", action=action)(issue_changed)
