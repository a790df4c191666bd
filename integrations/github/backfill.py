"""`milestones sync OWNER/REPO`: a repository's present state, pulled from GitHub at once.

For a team installing on a repository with history: its policy file, milestones,
defect issues, the latest completed run of each plan's workflow, and its open pull
requests, whose gate checks the web process then writes. Everything goes
through the same services as the webhooks, so running it again changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from github import Github, GithubException
from github.GithubObject import GithubObject

from core import services
from core.catalog import find_repository
from core.installations import record_installation
from core.policy import PolicyFile
from integrations.github.events import HandlerContext
from integrations.github.handlers.issues import GitHubIssue
from integrations.github.handlers.milestones import GitHubMilestone, save_github_milestone
from integrations.github.handlers.pull_requests import GitHubPullRequest
from integrations.github.handlers.workflow_runs import WorkflowRun
from integrations.github.launches import ingest_run
from integrations.github.policy_file import sync_policy


@dataclass
class BackfillReport:
    policy: str = ""
    milestones: int = 0
    issues: int = 0
    defects: int = 0
    runs: list[str] = field(default_factory=list)
    pull_requests: int = 0


def _listed(item: GithubObject) -> dict[str, Any]:
    """The record a list page gave for the item.

    PyGithub's `raw_data` would fetch every listed item again, one request each.
    """
    return item._rawData


def _milestones(client: Github, repository: str) -> list[dict[str, Any]]:
    return [_listed(milestone) for milestone in client.get_repo(repository).get_milestones(state="all")]


def _issues(client: Github, repository: str, labels: list[str]) -> list[dict[str, Any]]:
    repo = client.get_repo(repository)
    found: dict[int, dict[str, Any]] = {}
    # GitHub ANDs the labels of one query; each defect label is a query of its own.
    for label in labels:
        for issue in repo.get_issues(state="all", labels=[label]):
            record = _listed(issue)
            if "pull_request" not in record:
                found[record["number"]] = record
    return [found[number] for number in sorted(found)]


def _open_pulls(client: Github, repository: str) -> list[dict[str, Any]]:
    return [_listed(pull) for pull in client.get_repo(repository).get_pulls(state="open")]


def _latest_run(client: Github, repository: str, workflow: str) -> dict[str, Any] | None:
    repo = client.get_repo(repository)
    try:
        runs = repo.get_workflow(workflow).get_runs(status="completed")
    except GithubException as error:
        if error.status != 404:
            raise
        # Not a file name: the plan names the workflow by its display name.
        matching = [candidate for candidate in repo.get_workflows() if candidate.name == workflow]
        if not matching:
            return None
        runs = matching[0].get_runs(status="completed")
    for run in runs:
        record = _listed(run)
        if (record.get("head_repository") or {}).get("full_name", repository) == repository:
            return record
    return None


async def backfill(context: HandlerContext, repository: str) -> BackfillReport:
    report = BackfillReport()
    installation_id = await asyncio.to_thread(context.github.installation_id, repository)
    if installation_id is not None:
        owner = repository.split("/", 1)[0]
        await record_installation(installation_id, owner, None, added=[repository])
    client = await asyncio.to_thread(context.github.client, repository, installation_id)

    report.policy = await sync_policy(context, repository, installation_id, ref=None)
    policy = services.repository_policy(await find_repository(repository))

    for milestone in await asyncio.to_thread(_milestones, client, repository):
        await save_github_milestone(repository, GitHubMilestone.model_validate(milestone))
        report.milestones += 1

    for issue in await asyncio.to_thread(_issues, client, repository, policy.defects.labels):
        outcome = await services.upsert_defect(repository, GitHubIssue.model_validate(issue).facts())
        report.issues += 1
        report.defects += bool(outcome.defect and outcome.defect.counts)

    for workflow, plans in _plans_by_workflow(policy).items():
        run = await asyncio.to_thread(_latest_run, client, repository, workflow)
        if run is None:
            report.runs.append(f"{workflow}: no completed run")
            continue
        facts = WorkflowRun.model_validate(run).facts()
        notes = await ingest_run(context, repository, installation_id, facts, plans)
        report.runs.append(f"{workflow} run {facts.id}: " + "; ".join(notes))

    for pull in await asyncio.to_thread(_open_pulls, client, repository):
        await services.record_pull_request(repository, GitHubPullRequest.model_validate(pull).facts(), refresh=True)
        report.pull_requests += 1
    context.github.note_rate_limit(client)
    return report


def _plans_by_workflow(policy: PolicyFile) -> dict[str, dict]:
    grouped: dict[str, dict] = {}
    for name, config in policy.plans.items():
        if config.workflow:
            grouped.setdefault(config.workflow, {})[name] = config
    return grouped
