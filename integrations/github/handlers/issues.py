"""`issues`: every issue event updates the defect it is (or stops being)."""

from __future__ import annotations

from typing import Annotated, Literal

from gidgethub import routing
from pydantic import AfterValidator

from core import services
from integrations.github.events import (
    GitHubId,
    HandlerContext,
    Label,
    MilestoneRef,
    Model,
    Payload,
    Text,
    Timestamp,
    Url,
    WebhookEvent,
    clip,
    on,
)

router = routing.Router()

# Deleted and transferred issues leave this repository; pinning, locking and
# assignment change nothing a defect records.
ACTIONS = (
    "opened", "edited", "labeled", "unlabeled", "milestoned", "demilestoned",
    "closed", "reopened", "deleted", "transferred",
)  # fmt: skip


class GitHubIssue(Model):
    """An issue as webhooks and the REST API give it: what a defect records of it."""

    number: GitHubId
    title: Text | None = None
    labels: list[Label] | None = None
    state: Literal["open", "closed"]
    # Defect.state_reason's column; a reason GitHub adds later is kept, cut short.
    state_reason: Annotated[str, AfterValidator(clip(20))] | None = None
    html_url: Url | None = None
    milestone: MilestoneRef | None = None
    updated_at: Timestamp | None = None
    created_at: Timestamp | None = None
    closed_at: Timestamp | None = None
    # Where a defect names the tests it breaks (`Affects:` lines); GitHub sends null for none.
    body: str | None = None

    def facts(self, *, gone: bool = False) -> services.IssueFacts:
        return services.IssueFacts(
            number=self.number,
            title=self.title or "",
            labels=[label.name for label in self.labels or []],
            state=self.state,
            state_reason=self.state_reason,
            url=self.html_url,
            milestone_title=self.milestone.title if self.milestone else None,
            milestone_number=self.milestone.number if self.milestone else None,
            updated_at=self.updated_at,
            created_at=self.created_at,
            closed_at=self.closed_at,
            deleted=gone,
            body=self.body or "",
        )


class IssuesEvent(Payload):
    issue: GitHubIssue


async def issue_changed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(IssuesEvent)
    facts = payload.issue.facts(gone=event.action in ("deleted", "transferred"))
    outcome = await services.upsert_defect(payload.repository_name, facts)
    if not outcome.applied:
        return f"issue #{facts.number}: older than the stored state, not applied"
    defect = outcome.defect
    assert defect is not None
    kind = f"defect, severity {defect.severity.value}, {defect.state.value}" if defect.counts else "not a defect"
    return f"issue #{facts.number}: {kind}"


for action in ACTIONS:
    on(router, "issues", action=action)(issue_changed)
