"""`check_run` and `check_suite`: Re-evaluate and Re-run on our checks compute the gate again."""

from __future__ import annotations

from gidgethub import routing, sansio

from core.pull_requests import evaluate_again, open_pull_requests, request_refresh
from integrations.github.check_output import REEVALUATE
from integrations.github.events import HandlerContext, Ignored, on, repository_of

router = routing.Router()


@on(router, "check_run", action="requested_action")
@on(router, "check_run", action="rerequested")
async def check_run_requested(event: sansio.Event, context: HandlerContext) -> str:
    run = event.data["check_run"]
    if event.data["action"] == "requested_action":
        identifier = (event.data.get("requested_action") or {}).get("identifier")
        if identifier != REEVALUATE:
            raise Ignored(f"check run action {identifier!r} is not ours")
    if not await evaluate_again(run["id"]):
        raise Ignored(f"check run {run['id']} ({run.get('name')}) is not one of ours")
    return f"{run.get('name')}: evaluated again on request"


@on(router, "check_suite", action="rerequested")
async def check_suite_rerequested(event: sansio.Event, context: HandlerContext) -> str:
    suite = event.data["check_suite"]
    repository = repository_of(event)
    numbers = [pull["number"] for pull in suite.get("pull_requests") or []]
    # A fork's suite names no pull request: find them by the commit.
    pulls = (
        await open_pull_requests(repository, numbers=numbers)
        if numbers
        else await open_pull_requests(repository, head_sha=suite["head_sha"])
    )
    if not pulls:
        raise Ignored(f"no open pull request at {suite['head_sha'][:12]}")
    await request_refresh(pulls, forced=True)
    return f"checks of {len(pulls)} pull request(s) at {suite['head_sha'][:12]} evaluated again on request"
