"""What a CI job says about itself in its environment: the commit, branch, job link and source
of the launch it uploads. Each service documents its own variables; none is guessed.

The source names the job, so that a retried upload is recognised as the same launch; a job
that uploads to one plan twice, or runs as several parallel copies the variables cannot tell
apart, names its own `--source`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

Environment = Mapping[str, str]


@dataclass(frozen=True)
class JobFacts:
    service: str | None = None
    commit: str | None = None
    branch: str | None = None
    url: str | None = None
    source: str | None = None
    attempt: int | None = None
    # Only where the CI's repository is the GitHub one (GitHub Actions).
    repository: str | None = None


def detect(env: Environment) -> JobFacts:
    """The facts of the CI job this runs in; empty outside a CI we know."""
    for applies, read in _SERVICES:
        if applies(env):
            return read(env)
    return JobFacts()


def _get(env: Environment, *names: str) -> str | None:
    """The first of `names` set to something."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and int(value) > 0 else None


def _github_actions(env: Environment) -> JobFacts:
    # https://docs.github.com/actions/reference/variables-reference
    commit = _get(env, "GITHUB_SHA")
    event = _get(env, "GITHUB_EVENT_NAME") or ""
    if event.startswith("pull_request"):
        # GITHUB_SHA is then the merge commit GitHub made; the gate is about the head commit.
        commit = _pull_request_head(env.get("GITHUB_EVENT_PATH")) or commit
    branch = _get(env, "GITHUB_HEAD_REF", "GITHUB_REF_NAME")
    server, repository, run = _get(env, "GITHUB_SERVER_URL"), _get(env, "GITHUB_REPOSITORY"), _get(env, "GITHUB_RUN_ID")
    attempt = _number(_get(env, "GITHUB_RUN_ATTEMPT"))
    url = None
    if server and repository and run:
        url = f"{server}/{repository}/actions/runs/{run}" + (f"/attempts/{attempt}" if attempt else "")
    job = _get(env, "GITHUB_JOB")
    source = f"github:{run}" + (f":{job}" if job else "") if run else None
    return JobFacts("GitHub Actions", commit, branch, url, source, attempt, repository)


def _pull_request_head(event_path: str | None) -> str | None:
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
        head = event["pull_request"]["head"]["sha"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return head if isinstance(head, str) else None


def _gitlab(env: Environment) -> JobFacts:
    # https://docs.gitlab.com/ci/variables/predefined_variables/ ; CI_COMMIT_BRANCH is unset in
    # merge request pipelines, where the branch is the merge request's source branch.
    job = _get(env, "CI_JOB_ID")
    return JobFacts(
        "GitLab CI",
        commit=_get(env, "CI_COMMIT_SHA"),
        branch=_get(env, "CI_COMMIT_BRANCH", "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "CI_COMMIT_REF_NAME"),
        url=_get(env, "CI_JOB_URL"),
        source=f"gitlab:{job}" if job else None,
    )


def _jenkins(env: Environment) -> JobFacts:
    # Jenkins' env-vars.html; GIT_* come from the Git plugin, BRANCH_NAME and CHANGE_BRANCH from
    # multibranch pipelines (BRANCH_NAME is "PR-24" for a pull request, CHANGE_BRANCH its branch).
    branch = _get(env, "CHANGE_BRANCH", "BRANCH_NAME", "GIT_BRANCH")
    if branch and branch.startswith("origin/"):
        branch = branch.removeprefix("origin/")
    tag = _get(env, "BUILD_TAG")
    return JobFacts(
        "Jenkins",
        commit=_get(env, "GIT_COMMIT"),
        branch=branch,
        url=_get(env, "BUILD_URL"),
        source=f"jenkins:{tag}" if tag else None,
    )


def _circleci(env: Environment) -> JobFacts:
    # https://circleci.com/docs/reference/variables/ ; parallel copies of one job share its id.
    job = _get(env, "CIRCLE_WORKFLOW_JOB_ID", "CIRCLE_BUILD_NUM")
    source = f"circleci:{job}" if job else None
    if source and (_number(_get(env, "CIRCLE_NODE_TOTAL")) or 1) > 1:
        source += f":{_get(env, 'CIRCLE_NODE_INDEX') or 0}"
    return JobFacts(
        "CircleCI",
        commit=_get(env, "CIRCLE_SHA1"),
        branch=_get(env, "CIRCLE_BRANCH"),
        url=_get(env, "CIRCLE_BUILD_URL"),
        source=source,
    )


def _buildkite(env: Environment) -> JobFacts:
    # https://buildkite.com/docs/pipelines/environment_variables ; a retried job is a new job, and
    # a build started by hand without a commit says HEAD.
    job = _get(env, "BUILDKITE_JOB_ID")
    build = _get(env, "BUILDKITE_BUILD_URL")
    commit = _get(env, "BUILDKITE_COMMIT")
    return JobFacts(
        "Buildkite",
        commit=None if commit == "HEAD" else commit,
        branch=_get(env, "BUILDKITE_BRANCH"),
        url=f"{build}#{job}" if build and job else build,
        source=f"buildkite:{job}" if job else None,
    )


_SERVICES: list[tuple[Callable[[Environment], bool], Callable[[Environment], JobFacts]]] = [
    (lambda env: env.get("GITHUB_ACTIONS") == "true", _github_actions),
    (lambda env: env.get("GITLAB_CI") == "true", _gitlab),
    (lambda env: bool(env.get("JENKINS_URL")) and bool(env.get("BUILD_NUMBER")), _jenkins),
    (lambda env: env.get("CIRCLECI") == "true", _circleci),
    (lambda env: env.get("BUILDKITE") == "true", _buildkite),
]
