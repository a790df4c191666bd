"""`workflow_run` `completed`: a run of a workflow that feeds a test plan becomes a launch."""

from __future__ import annotations

from gidgethub import routing, sansio

from core.catalog import find_repository
from core.services import repository_policy
from integrations.github.events import HandlerContext, Ignored, installation_of, on, repository_of
from integrations.github.launches import RunFacts, ingest_run

router = routing.Router()


@on(router, "workflow_run", action="completed")
async def workflow_run_completed(event: sansio.Event, context: HandlerContext) -> str:
    repository = repository_of(event)
    run = RunFacts.from_payload(event.data["workflow_run"])
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
    notes = await ingest_run(context, repository, installation_of(event), run, plans)
    return f"run {run.id} attempt {run.attempt}: " + "; ".join(notes)
