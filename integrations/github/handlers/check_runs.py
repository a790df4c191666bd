"""`check_run` and `check_suite`: Re-evaluate and Re-run on our checks compute the gate again."""

from __future__ import annotations

from gidgethub import routing

from core.pull_requests import evaluate_again, open_pull_requests, request_refresh
from integrations.github.check_output import REEVALUATE
from integrations.github.events import GitHubId, HandlerContext, Ignored, Model, Payload, Sha, Text, WebhookEvent, on

router = routing.Router()


class CheckRun(Model):
    id: GitHubId
    name: Text | None = None


class RequestedAction(Model):
    identifier: Text | None = None


class CheckRunEvent(Payload):
    check_run: CheckRun
    requested_action: RequestedAction | None = None


class PullRequestNumber(Model):
    number: GitHubId


class CheckSuite(Model):
    head_sha: Sha
    pull_requests: list[PullRequestNumber] | None = None


class CheckSuiteEvent(Payload):
    check_suite: CheckSuite


@on(router, "check_run", action="requested_action")
@on(router, "check_run", action="rerequested")
async def check_run_requested(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(CheckRunEvent)
    run = payload.check_run
    if event.action == "requested_action":
        identifier = payload.requested_action.identifier if payload.requested_action else None
        if identifier != REEVALUATE:
            raise Ignored(f"check run action {identifier!r} is not ours")
    if not await evaluate_again(run.id):
        raise Ignored(f"check run {run.id} ({run.name}) is not one of ours")
    return f"{run.name}: evaluated again on request"


@on(router, "check_suite", action="rerequested")
async def check_suite_rerequested(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(CheckSuiteEvent)
    suite = payload.check_suite
    numbers = [pull.number for pull in suite.pull_requests or []]
    # A fork's suite names no pull request: find them by the commit.
    pulls = (
        await open_pull_requests(payload.repository_name, numbers=numbers)
        if numbers
        else await open_pull_requests(payload.repository_name, head_sha=suite.head_sha)
    )
    if not pulls:
        raise Ignored(f"no open pull request at {suite.head_sha[:12]}")
    await request_refresh(pulls, forced=True)
    return f"checks of {len(pulls)} pull request(s) at {suite.head_sha[:12]} evaluated again on request"
