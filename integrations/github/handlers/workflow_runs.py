"""`workflow_run` `completed`: a run of a workflow that feeds a test plan becomes a launch."""

from __future__ import annotations

from gidgethub import routing

from core.catalog import find_repository
from core.services import repository_policy
from integrations.github.events import (
    GitHubId,
    GitRef,
    HandlerContext,
    Ignored,
    Model,
    Payload,
    PositiveInt32,
    RepositoryRef,
    Sha,
    Text,
    Timestamp,
    Url,
    WebhookEvent,
    on,
)
from integrations.github.launches import RunFacts, ingest_run

router = routing.Router()


class WorkflowRun(Model):
    """A workflow run as webhooks and the REST API give it."""

    id: GitHubId
    run_attempt: PositiveInt32 | None = None
    name: Text | None = None
    path: Text | None = None
    head_sha: Sha | None = None
    head_branch: GitRef | None = None
    html_url: Url | None = None
    run_started_at: Timestamp | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    # The repository whose branch ran: a fork's for pull requests from forks.
    head_repository: RepositoryRef | None = None

    def facts(self) -> RunFacts:
        return RunFacts(
            id=self.id,
            attempt=self.run_attempt or 1,
            name=self.name or "",
            path=self.path or "",
            head_sha=self.head_sha,
            head_branch=self.head_branch,
            url=self.html_url,
            started_at=self.run_started_at or self.created_at,
            finished_at=self.updated_at,
            head_repository=self.head_repository.full_name if self.head_repository else None,
        )


class WorkflowRunEvent(Payload):
    workflow_run: WorkflowRun


@on(router, "workflow_run", action="completed")
async def workflow_run_completed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(WorkflowRunEvent)
    repository = payload.repository_name
    run = payload.workflow_run.facts()
    if run.head_repository and run.head_repository != repository:
        # A fork's branch is not ours, though it may share its name, and its workflow
        # and artifacts are the fork author's to write.
        raise Ignored(f"run {run.id} is of {run.head_repository}:{run.head_branch}, a fork")
    try:
        policy = repository_policy(await find_repository(repository))
    except LookupError:
        raise Ignored(f"{repository} has no policy yet, so no workflow feeds a test plan") from None
    plans = {name: policy.plans[name] for name in policy.plan_for_workflow(run.path, run.name)}
    if not plans:
        raise Ignored(f"workflow {run.name or run.path} feeds no test plan")
    notes = await ingest_run(context, repository, payload.installation_id, run, plans)
    return f"run {run.id} attempt {run.attempt}: " + "; ".join(notes)
