"""A loopback fake of the GitHub REST endpoints the service uses, for tests.

Two real HTTP servers on 127.0.0.1, each on a port the OS picks: the API, and the
artifact storage that the API redirects artifact downloads to. Being a separate port
makes the storage a different origin, which is what makes HTTP clients drop the
Authorization header on the redirect, exactly as with GitHub's real blob storage.

    with FakeGitHub() as fake:
        repo = fake.repo("acme/shop", default_branch="main", installation_id=42)
        repo.add_milestone(7, "v2.0", due_on="2024-05-01T07:00:00Z")
        gh = Github(auth=Auth.Token("t"), base_url=fake.url,
                    seconds_between_requests=0, seconds_between_writes=0, retry=None)
        ...
        assert [r.query for r in fake.calls("GET", "/repos/acme/shop/milestones")] == [...]

Sockets are bound when FakeGitHub is created, so `url`, `storage_url` and every URL in
the JSON it serves are known before `start()`. Configure data from the test thread
through the helpers (they take the lock); the dicts they return are the ones served and
may be edited in place between requests. Data timestamps are fixed (2024-01-01 plus an
offset) so that tests are deterministic; only installation tokens use the real clock,
because PyGithub compares their expiry with it.

Writes keep GitHub's rules that production code can trip on: only an installation token
the fake issued (`issued_tokens`, not `accepted_tokens`) may create or update check runs,
and check runs and commit statuses are checked against GitHub's limits (422). Data that
GitHub takes but does not serve back stays on the stored dicts for tests to read: a check
run's "annotations" (appended across updates), "images" and "actions", a status's "sha",
a pull request's "files".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import math
import re
import secrets
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from tests.loopback import read_body

__all__ = ["FakeGitHub", "FakeRepo", "RecordedRequest", "BASE_TIME", "iso"]

# Every default timestamp is an offset from this, so runs of a test see identical data.
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100

APP_SLUG = "milestone-gate"
CHECK_STATUSES = ("queued", "in_progress", "completed")
CHECK_CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
ANNOTATION_LEVELS = ("notice", "warning", "failure")
STATUS_STATES = ("error", "failure", "pending", "success")
# GitHub's limits on what a check run or a commit status may carry.
MAX_OUTPUT_CHARS = 65535  # summary and text, each; also checked in UTF-8 bytes
MAX_ANNOTATIONS = 50  # per request; an update appends to those already there
MAX_ACTIONS = 3
ACTION_LIMITS = {"label": 20, "description": 40, "identifier": 20}
MAX_STATUS_DESCRIPTION = 140
MAX_PULL_FILES = 3000  # the most /pulls/{n}/files lists, however many changed
# Keys of the stored dicts that GitHub does not serve back.
_CHECK_RUN_PRIVATE = ("annotations", "images", "actions")
_STATUS_PRIVATE = ("sha",)
# What the full pull request has over the one in lists.
_PULL_DETAIL = ("merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments")
_PULL_DETAIL += ("review_comments", "maintainer_can_modify", "commits", "additions", "deletions", "changed_files")

Json = dict[str, Any]
When = datetime | date | str | None


def iso(value: datetime | date | str) -> str:
    """GitHub's timestamp format: UTC, seconds, a Z suffix."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value: When, default: datetime | str) -> str:
    """`value` as a GitHub timestamp, or `default` when it is None."""
    return iso(default if value is None else value)


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _encode64(data: bytes) -> str:
    """Base64 as GitHub's contents API sends it (Ruby's encode64): a newline after every 60 characters."""
    text = base64.b64encode(data).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"{kind}:{number}".encode()).decode().rstrip("=")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as either server received it."""

    server: str  # "api" or "storage"
    method: str
    path: str  # as sent (still percent-encoded), without the query
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class _Failure:
    method: str
    path_prefix: str
    status: int
    remaining: int
    server: str | None
    headers: dict[str, str]


@dataclass
class _Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    return _Response(status, json.dumps(payload).encode(), merged)


def _error(status: int, message: str | None = None, errors: list[Any] | None = None) -> _Response:
    # GitHub's error body: a message, a documentation link, and (lately) the status as a string.
    body: Json = {"message": message or HTTPStatus(status).phrase}
    if errors is not None:
        body["errors"] = errors
    body.update(documentation_url="https://docs.github.com/rest", status=str(status))
    return _json_response(status, body)


def _invalid_request(problems: list[str]) -> _Response:
    """A 422 from GitHub's schema check: it puts the problems in the message, after "Invalid request."."""
    return _error(422, "\n\n".join(["Invalid request.", "\n".join(problems)]), problems)


def _validation_failed(resource: str, field: str, message: str) -> _Response:
    """A 422 from GitHub's model validation, once the request passed the schema."""
    error = {"resource": resource, "code": "custom", "field": field, "message": message}
    return _error(422, "Validation Failed", [error])


class FakeRepo:
    """The data of one repository; build it with the add_* helpers or edit the lists directly."""

    def __init__(
        self, fake: FakeGitHub, full_name: str, default_branch: str, installation_id: int | None, repo_id: int
    ):
        self._fake = fake
        self.full_name = full_name
        self.owner, self.name = full_name.split("/", 1)
        self.default_branch = default_branch
        self.installation_id = installation_id
        self.id = repo_id
        self.private = False
        # Who may read it when private: logins (signed-in people's user tokens are checked against these).
        self.readers: set[str] = set()
        self.milestones: list[Json] = []
        self.issues: list[Json] = []
        self.files: dict[tuple[str, str | None], bytes] = {}
        self.workflows: list[Json] = []
        self.runs: list[Json] = []
        self.artifacts: list[Json] = []
        self.artifact_zips: dict[int, bytes] = {}
        self.check_runs: list[Json] = []
        self.statuses: list[Json] = []
        self.pulls: list[Json] = []

    @property
    def api_url(self) -> str:
        return f"{self._fake.url}/repos/{self.full_name}"

    @property
    def html_url(self) -> str:
        return f"{self._fake.html_base}/{self.full_name}"

    # -- milestones and issues ---------------------------------------------------------

    def add_milestone(
        self,
        number: int,
        title: str,
        due_on: When = None,
        state: str = "open",
        description: str = "",
        *,
        created_at: When = None,
        updated_at: When = None,
        closed_at: When = None,
    ) -> Json:
        """Add a milestone; `open_issues`/`closed_issues` are counted from `issues` unless set."""
        created = _stamp(created_at, BASE_TIME + timedelta(days=number))
        updated = _stamp(updated_at, created)
        milestone: Json = {
            "url": f"{self.api_url}/milestones/{number}",
            "html_url": f"{self.html_url}/milestone/{number}",
            "labels_url": f"{self.api_url}/milestones/{number}/labels",
            "id": self._fake._next_id(),
            "node_id": _node_id("Milestone", number),
            "number": number,
            "title": title,
            "description": description,
            "creator": self._fake._user("octocat"),
            "state": state,
            "created_at": created,
            "updated_at": updated,
            "due_on": None if due_on is None else iso(due_on),
            "closed_at": _stamp(closed_at, updated) if state == "closed" or closed_at else None,
        }
        with self._fake._lock:
            self.milestones.append(milestone)
        return milestone

    def milestone(self, number: int) -> Json:
        """The milestone dict with this number (KeyError if absent)."""
        for milestone in self.milestones:
            if milestone["number"] == number:
                return milestone
        raise KeyError(f"{self.full_name} has no milestone {number}")

    def add_issue(
        self,
        number: int,
        title: str = "",
        state: str = "open",
        *,
        labels: Iterable[str] = (),
        milestone: int | Json | None = None,
        state_reason: str | None = None,
        pull_request: bool | Json = False,
        body: str | None = None,
        user: str = "octocat",
        created_at: When = None,
        updated_at: When = None,
        closed_at: When = None,
    ) -> Json:
        """Add an issue (or, with `pull_request`, the issue view of a PR, as /issues lists them).

        `milestone` is a milestone number (its dict is shared, so later edits show) or a dict.
        A closed issue defaults to state_reason "completed" and closed_at = updated_at.
        """
        created = _stamp(created_at, BASE_TIME + timedelta(minutes=number))
        updated = _stamp(updated_at, created)
        closed = state == "closed"
        kind = "pull" if pull_request else "issues"
        issue: Json = {
            "url": f"{self.api_url}/issues/{number}",
            "repository_url": self.api_url,
            "labels_url": f"{self.api_url}/issues/{number}/labels{{/name}}",
            "comments_url": f"{self.api_url}/issues/{number}/comments",
            "events_url": f"{self.api_url}/issues/{number}/events",
            "html_url": f"{self.html_url}/{kind}/{number}",
            "id": self._fake._next_id(),
            "node_id": _node_id("PullRequest" if pull_request else "Issue", number),
            "number": number,
            "title": title or f"Issue {number}",
            "user": self._fake._user(user),
            "labels": [self._label(name) for name in labels],
            "state": state,
            "locked": False,
            "assignee": None,
            "assignees": [],
            "milestone": self.milestone(milestone) if isinstance(milestone, int) else milestone,
            "comments": 0,
            "created_at": created,
            "updated_at": updated,
            "closed_at": _stamp(closed_at, updated) if closed or closed_at else None,
            "author_association": "MEMBER",
            "body": body,
            "state_reason": state_reason if state_reason is not None or not closed else "completed",
        }
        if pull_request:
            issue["pull_request"] = (
                pull_request
                if isinstance(pull_request, dict)
                else {
                    "url": f"{self.api_url}/pulls/{number}",
                    "html_url": f"{self.html_url}/pull/{number}",
                    "diff_url": f"{self.html_url}/pull/{number}.diff",
                    "patch_url": f"{self.html_url}/pull/{number}.patch",
                    "merged_at": None,
                }
            )
        with self._fake._lock:
            self.issues.append(issue)
        return issue

    def _label(self, name: str) -> Json:
        return {
            "id": zlib.crc32(name.encode()),
            "node_id": _node_id("Label", zlib.crc32(name.encode())),
            "url": f"{self.api_url}/labels/{quote(name, safe='')}",
            "name": name,
            "color": "ededed",
            "default": False,
            "description": None,
        }

    # -- Actions -----------------------------------------------------------------------

    def add_workflow(self, workflow_id: int, name: str, path: str, state: str = "active") -> Json:
        """Add a workflow, found by its id or its file name (`ci.yml` for `.github/workflows/ci.yml`)."""
        workflow: Json = {
            "id": workflow_id,
            "node_id": _node_id("Workflow", workflow_id),
            "name": name,
            "path": path,
            "state": state,
            "created_at": iso(BASE_TIME),
            "updated_at": iso(BASE_TIME),
            "url": f"{self.api_url}/actions/workflows/{workflow_id}",
            "html_url": f"{self.html_url}/blob/{self.default_branch}/{path}",
            "badge_url": f"{self.html_url}/workflows/{quote(name)}/badge.svg",
        }
        with self._fake._lock:
            self.workflows.append(workflow)
        return workflow

    def workflow(self, id_or_file: int | str) -> Json:
        """The workflow with this id or file name (KeyError if absent)."""
        for workflow in self.workflows:
            if str(workflow["id"]) == str(id_or_file) or workflow["path"].rsplit("/", 1)[-1] == id_or_file:
                return workflow
        raise KeyError(f"{self.full_name} has no workflow {id_or_file!r}")

    def add_run(
        self,
        run_id: int,
        workflow_id: int,
        head_sha: str,
        head_branch: str,
        run_attempt: int = 1,
        status: str = "completed",
        conclusion: str | None = "success",
        created_at: When = None,
        updated_at: When = None,
        *,
        run_number: int | None = None,
        event: str = "push",
        run_started_at: When = None,
    ) -> Json:
        """Add a run of a workflow added before; `conclusion` only applies once status is completed."""
        workflow = self.workflow(workflow_id)
        created = _stamp(created_at, BASE_TIME + timedelta(hours=1, minutes=len(self.runs)))
        updated = _stamp(updated_at, _parse_iso(created) + timedelta(minutes=5))
        if run_number is None:
            run_number = 1 + sum(1 for run in self.runs if run["workflow_id"] == workflow_id)
        url = f"{self.api_url}/actions/runs/{run_id}"
        mini = self._fake._mini_repo(self)
        run: Json = {
            "id": run_id,
            "name": workflow["name"],
            "node_id": _node_id("WorkflowRun", run_id),
            "head_branch": head_branch,
            "head_sha": head_sha,
            "path": workflow["path"],
            "display_title": f"{workflow['name']} on {head_branch}",
            "run_number": run_number,
            "event": event,
            "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "workflow_id": workflow_id,
            "check_suite_id": run_id + 1,
            "check_suite_node_id": _node_id("CheckSuite", run_id + 1),
            "url": url,
            "html_url": f"{self.html_url}/actions/runs/{run_id}",
            "pull_requests": [],
            "created_at": created,
            "updated_at": updated,
            "actor": self._fake._user("octocat"),
            "triggering_actor": self._fake._user("octocat"),
            "run_attempt": run_attempt,
            "referenced_workflows": [],
            "run_started_at": _stamp(run_started_at, created),
            "jobs_url": f"{url}/jobs",
            "logs_url": f"{url}/logs",
            "check_suite_url": f"{self.api_url}/check-suites/{run_id + 1}",
            "artifacts_url": f"{url}/artifacts",
            "cancel_url": f"{url}/cancel",
            "rerun_url": f"{url}/rerun",
            "previous_attempt_url": f"{url}/attempts/{run_attempt - 1}" if run_attempt > 1 else None,
            "workflow_url": workflow["url"],
            "head_commit": {
                "id": head_sha,
                "tree_id": hashlib.sha1(head_sha.encode()).hexdigest(),
                "message": f"Commit {head_sha[:7]}",
                "timestamp": created,
                "author": {"name": "Octo Cat", "email": "octocat@example.com"},
                "committer": {"name": "Octo Cat", "email": "octocat@example.com"},
            },
            "repository": mini,
            "head_repository": mini,
        }
        with self._fake._lock:
            self.runs.append(run)
        return run

    def run(self, run_id: int) -> Json:
        """The run dict with this id (KeyError if absent)."""
        for run in self.runs:
            if run["id"] == run_id:
                return run
        raise KeyError(f"{self.full_name} has no run {run_id}")

    def add_artifact(
        self,
        run_id: int,
        artifact_id: int,
        name: str,
        zip_bytes: bytes,
        expired: bool = False,
        *,
        created_at: When = None,
    ) -> Json:
        """Add an artifact of a run added before; its zip is served by the storage server."""
        run = self.run(run_id)
        created = _parse_iso(_stamp(created_at, run["updated_at"]))
        url = f"{self.api_url}/actions/artifacts/{artifact_id}"
        artifact: Json = {
            "id": artifact_id,
            "node_id": _node_id("Artifact", artifact_id),
            "name": name,
            "size_in_bytes": len(zip_bytes),
            "url": url,
            "archive_download_url": f"{url}/zip",
            "expired": expired,
            "digest": f"sha256:{hashlib.sha256(zip_bytes).hexdigest()}",
            "created_at": iso(created),
            "expires_at": iso(created + timedelta(days=90)),
            "updated_at": iso(created),
            "workflow_run": {
                "id": run_id,
                "repository_id": self.id,
                "head_repository_id": self.id,
                "head_branch": run["head_branch"],
                "head_sha": run["head_sha"],
            },
        }
        with self._fake._lock:
            self.artifacts.append(artifact)
            self.artifact_zips[artifact_id] = zip_bytes
        return artifact

    def artifact(self, artifact_id: int) -> Json:
        """The artifact dict with this id (KeyError if absent)."""
        for artifact in self.artifacts:
            if artifact["id"] == artifact_id:
                return artifact
        raise KeyError(f"{self.full_name} has no artifact {artifact_id}")

    # -- checks and statuses -----------------------------------------------------------

    def add_check_run(
        self,
        name: str,
        head_sha: str,
        status: str = "queued",
        conclusion: str | None = None,
        *,
        details_url: str | None = None,
        external_id: str = "",
        started_at: When = None,
        completed_at: When = None,
        output: Json | None = None,
        actions: Iterable[Json] = (),
        check_run_id: int | None = None,
    ) -> Json:
        """Add a check run as the fake's app made it (nothing is validated; the API does that).

        A conclusion makes it completed, as on GitHub. The stored dict also keeps what GitHub
        does not serve back: "annotations" (all of them, in order), "images" and "actions".
        """
        run_id = self._fake._next_id() if check_run_id is None else check_run_id
        if conclusion is not None:
            status = "completed"
        started = _stamp(started_at, BASE_TIME + timedelta(hours=2, minutes=len(self.check_runs)))
        if status == "completed" and completed_at is None:
            completed_at = _parse_iso(started) + timedelta(minutes=5)
        url = f"{self.api_url}/check-runs/{run_id}"
        output = output or {}
        suites = [run["check_suite"]["id"] for run in self.check_runs if run["head_sha"] == head_sha]
        check_run: Json = {
            "id": run_id,
            "node_id": _node_id("CheckRun", run_id),
            "head_sha": head_sha,
            "external_id": external_id,
            "url": url,
            "html_url": f"{self.html_url}/runs/{run_id}",
            "details_url": details_url,
            "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "started_at": started,
            "completed_at": None if completed_at is None or status != "completed" else iso(completed_at),
            "output": {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_url": f"{url}/annotations",
            },
            "name": name,
            # One suite per app and commit: runs of the same head SHA share it.
            "check_suite": {"id": suites[0] if suites else self._fake._next_id()},
            "app": self._fake._app_json(),
            "pull_requests": [],
            "annotations": [dict(a) for a in output.get("annotations") or []],
            "images": [dict(i) for i in output.get("images") or []],
            "actions": [dict(a) for a in actions],
        }
        with self._fake._lock:
            self.check_runs.append(check_run)
        return check_run

    def check_run(self, check_run_id: int) -> Json:
        """The check run dict with this id (KeyError if absent)."""
        for check_run in self.check_runs:
            if check_run["id"] == check_run_id:
                return check_run
        raise KeyError(f"{self.full_name} has no check run {check_run_id}")

    def check_runs_for(self, head_sha: str, name: str | None = None) -> list[Json]:
        """The stored check runs of a commit (all of them, oldest first), optionally of one name."""
        with self._fake._lock:
            return [r for r in self.check_runs if r["head_sha"] == head_sha and name in (None, r["name"])]

    def add_status(
        self,
        sha: str,
        state: str,
        *,
        target_url: str | None = None,
        description: str | None = None,
        context: str = "default",
        creator: str | Json = "octocat",
        created_at: When = None,
    ) -> Json:
        """Add a commit status; the stored dict keeps the commit under "sha" (GitHub does not serve it)."""
        status_id = self._fake._next_id()
        created = _stamp(created_at, BASE_TIME + timedelta(hours=4, minutes=len(self.statuses)))
        status: Json = {
            "url": f"{self.api_url}/statuses/{sha}",
            "id": status_id,
            "node_id": _node_id("StatusContext", status_id),
            "state": state,
            "description": description,
            "target_url": target_url,
            "context": context,
            "created_at": created,
            "updated_at": created,
            "creator": self._fake._user(creator) if isinstance(creator, str) else creator,
            "sha": sha,
        }
        with self._fake._lock:
            self.statuses.append(status)
        return status

    # -- pull requests -----------------------------------------------------------------

    def add_pull(
        self,
        number: int,
        head_sha: str,
        base: str = "main",
        head_ref: str = "feature",
        *,
        title: str = "",
        state: str = "open",
        draft: bool = False,
        milestone: int | Json | None = None,
        files: Iterable[str | Json] = (),
        body: str | None = None,
        user: str = "octocat",
        created_at: When = None,
        updated_at: When = None,
    ) -> Json:
        """Add a pull request; the stored dict keeps its changed files under "files".

        A file is a name (modified) or a dict over those defaults: {"filename": ..., "status":
        "added"|"removed"|"renamed", "previous_filename": ...}. additions, deletions and
        changed_files are counted from the files unless set in the dict. The /issues view of a
        pull request is separate: add it with add_issue(pull_request=True) when a test needs it.
        """
        created = _stamp(created_at, BASE_TIME + timedelta(hours=5, minutes=number))
        updated = _stamp(updated_at, created)
        api = f"{self.api_url}/pulls/{number}"
        html = f"{self.html_url}/pull/{number}"
        issue = f"{self.api_url}/issues/{number}"
        owner = self._fake._user(self.owner)
        owner["type"] = "Organization"
        mini = self._fake._mini_repo(self)
        base_sha = hashlib.sha1(f"{self.full_name}@{base}".encode()).hexdigest()
        pull: Json = {
            "url": api,
            "id": self._fake._next_id(),
            "node_id": _node_id("PullRequest", number),
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "issue_url": issue,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.api_url}/pulls/comments{{/number}}",
            "comments_url": f"{issue}/comments",
            "statuses_url": f"{self.api_url}/statuses/{head_sha}",
            "number": number,
            "state": state,
            "locked": False,
            "title": title or f"Pull request {number}",
            "user": self._fake._user(user),
            "body": body,
            "labels": [],
            "milestone": self.milestone(milestone) if isinstance(milestone, int) else milestone,
            "active_lock_reason": None,
            "created_at": created,
            "updated_at": updated,
            "closed_at": updated if state == "closed" else None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"{self.owner}:{head_ref}",
                "ref": head_ref,
                "sha": head_sha,
                "user": owner,
                "repo": mini,
            },
            "base": {"label": f"{self.owner}:{base}", "ref": base, "sha": base_sha, "user": owner, "repo": mini},
            "_links": {
                "self": {"href": api},
                "html": {"href": html},
                "issue": {"href": issue},
                "comments": {"href": f"{issue}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{self.api_url}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": f"{self.api_url}/statuses/{head_sha}"},
            },
            "author_association": "MEMBER",
            "auto_merge": None,
            "draft": draft,
            "merged": False,
            "mergeable": None if state == "closed" else True,
            "rebaseable": None if state == "closed" else True,
            "mergeable_state": "draft" if draft else "clean",
            "merged_by": None,
            "comments": 0,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "files": [self._pull_file(head_sha, entry) for entry in files],
        }
        with self._fake._lock:
            self.pulls.append(pull)
        return pull

    def _pull_file(self, head_sha: str, entry: str | Json) -> Json:
        given = {"filename": entry} if isinstance(entry, str) else dict(entry)
        name = given["filename"]
        status = given.get("status", "modified")
        data = self.files.get((name, head_sha))
        lines = {"added": (1, 0), "removed": (0, 1), "renamed": (0, 0)}.get(status, (1, 1))
        patches = {
            "added": f"@@ -0,0 +1 @@\n+{name}",
            "removed": f"@@ -1 +0,0 @@\n-{name}",
            "modified": f"@@ -1 +1 @@\n-{name} before\n+{name} after",
        }
        file: Json = {
            # The blob at the head commit: the one in `files` when the test stored it there.
            "sha": _git_blob_sha(data) if data is not None else hashlib.sha1(f"{head_sha}:{name}".encode()).hexdigest(),
            "filename": name,
            "status": status,
            "additions": lines[0],
            "deletions": lines[1],
            "blob_url": f"{self.html_url}/blob/{head_sha}/{quote(name)}",
            "raw_url": f"{self.html_url}/raw/{head_sha}/{quote(name)}",
            "contents_url": f"{self.api_url}/contents/{quote(name)}?ref={head_sha}",
        }
        if status in patches:
            file["patch"] = patches[status]  # a pure rename has no patch
        file.update(given)
        file.setdefault("changes", file["additions"] + file["deletions"])
        return file

    def pull(self, number: int) -> Json:
        """The pull request dict with this number (KeyError if absent)."""
        for pull in self.pulls:
            if pull["number"] == number:
                return pull
        raise KeyError(f"{self.full_name} has no pull request {number}")


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client's idle keep-alive connection must not hold up stop()
    request_queue_size = 64  # many test threads may connect at once; the default backlog is 5

    def __init__(self, fake: FakeGitHub, role: str):
        self.fake = fake
        self.role = role
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 for keep-alive, as GitHub; every response therefore carries Content-Length.
    protocol_version = "HTTP/1.1"
    timeout = 10  # idle keep-alive connections end; urllib3 and httpx reconnect on their own
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        split = urlsplit(self.path)
        request = RecordedRequest(
            server=self.server.role,
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=read_body(self),
        )
        response = self.server.fake._dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # requests are recorded in FakeGitHub.requests instead of cluttering test output


_Route = tuple[str, re.Pattern[str], Callable[..., _Response]]
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


class FakeGitHub:
    """The fake GitHub: an API server and an artifact storage server, with recorded requests.

    Knobs (plain attributes, settable at any time): rate_limit, rate_remaining, rate_reset,
    token_lifetime, installation_permissions, app_id, require_token, accepted_tokens,
    storage_rejects_authorization, html_base.
    """

    def __init__(self, html_base: str = "https://github.com"):
        self._lock = threading.RLock()
        self._ids = itertools.count(1000)
        self._repos: dict[str, FakeRepo] = {}
        self._failures: list[_Failure] = []
        self._threads: list[threading.Thread] = []
        self._signing_key = secrets.token_bytes(16)
        self.html_base = html_base
        self.requests: list[RecordedRequest] = []
        # Handler exceptions become 500s; kept here so a test can show what broke in the fake.
        self.errors: list[str] = []
        self.rate_limit = 5000
        self.rate_remaining = 5000
        self.rate_reset = int(time.time()) + 3600
        self.tokens_issued = 0
        self.issued_tokens: list[str] = []
        self.token_lifetime = timedelta(hours=1)
        self.installation_permissions: dict[str, str] = {
            "actions": "read",
            "contents": "read",
            "issues": "read",
            "metadata": "read",
            "pull_requests": "read",
        }
        self.app_id = 1
        self.app_jwts: list[str] = []
        # When set, repository endpoints answer 401 unless the token was issued or accepted.
        self.require_token = False
        self.accepted_tokens: set[str] = set()
        # Signed-URL storage (S3, Azure) answers 400 when a request also has Authorization.
        self.storage_rejects_authorization = True
        # Sign-in (the GitHub App's user authorization, or an OAuth app): client id -> secret; the
        # person the authorize page signs in, as a browser already signed in to GitHub would be;
        # codes handed out and not yet exchanged; user tokens -> login; people's names; teams.
        self.oauth_clients: dict[str, str] = {}
        self.signed_in_as: str | None = None
        self.oauth_codes: dict[str, tuple[str, str, str]] = {}
        self.user_tokens: dict[str, str] = {}
        self.user_names: dict[str, str] = {}
        self.teams: dict[tuple[str, str], list[str]] = {}
        self._api = _Server(self, "api")
        self._storage = _Server(self, "storage")
        self.url = f"http://127.0.0.1:{self._api.server_address[1]}"
        self.storage_url = f"http://127.0.0.1:{self._storage.server_address[1]}"
        self._routes: list[_Route] = [
            ("GET", re.compile(r"/rate_limit"), self._rate_limit_route),
            ("GET", re.compile(r"/login/oauth/authorize"), self._oauth_authorize),
            ("POST", re.compile(r"/login/oauth/access_token"), self._oauth_access_token),
            ("GET", re.compile(r"/user"), self._signed_in_user),
            ("GET", re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<slug>[^/]+)/members"), self._team_members),
            ("GET", re.compile(r"/app/installations/(?P<installation>\d+)"), self._installation_by_id),
            ("POST", re.compile(r"/app/installations/(?P<installation>\d+)/access_tokens"), self._access_token),
            ("GET", re.compile(r"/raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)"), self._raw),
            ("GET", re.compile(_REPO), self._repository),
            ("GET", re.compile(_REPO + r"/installation"), self._repo_installation),
            ("GET", re.compile(_REPO + r"/milestones"), self._milestones),
            ("POST", re.compile(_REPO + r"/milestones"), self._create_milestone),
            ("GET", re.compile(_REPO + r"/milestones/(?P<number>\d+)"), self._milestone),
            ("PATCH", re.compile(_REPO + r"/milestones/(?P<number>\d+)"), self._update_milestone),
            ("GET", re.compile(_REPO + r"/issues"), self._issues),
            ("GET", re.compile(_REPO + r"/issues/(?P<number>\d+)"), self._issue),
            ("GET", re.compile(_REPO + r"/contents/(?P<path>.+)"), self._contents),
            ("GET", re.compile(_REPO + r"/actions/workflows"), self._workflows),
            ("GET", re.compile(_REPO + r"/actions/workflows/(?P<workflow>[^/]+)"), self._workflow),
            ("GET", re.compile(_REPO + r"/actions/workflows/(?P<workflow>[^/]+)/runs"), self._runs),
            ("GET", re.compile(_REPO + r"/actions/runs"), self._runs),
            ("GET", re.compile(_REPO + r"/actions/runs/(?P<run>\d+)"), self._run),
            ("GET", re.compile(_REPO + r"/actions/runs/(?P<run>\d+)/artifacts"), self._run_artifacts),
            ("GET", re.compile(_REPO + r"/actions/artifacts/(?P<artifact>\d+)"), self._artifact),
            ("GET", re.compile(_REPO + r"/actions/artifacts/(?P<artifact>\d+)/zip"), self._artifact_zip),
            ("POST", re.compile(_REPO + r"/check-runs"), self._create_check_run),
            ("GET", re.compile(_REPO + r"/check-runs/(?P<check_run>\d+)"), self._check_run),
            ("PATCH", re.compile(_REPO + r"/check-runs/(?P<check_run>\d+)"), self._update_check_run),
            ("GET", re.compile(_REPO + r"/check-runs/(?P<check_run>\d+)/annotations"), self._check_run_annotations),
            ("GET", re.compile(_REPO + r"/commits/(?P<ref>[^/]+)/check-runs"), self._commit_check_runs),
            ("POST", re.compile(_REPO + r"/statuses/(?P<sha>[^/]+)"), self._create_status),
            ("GET", re.compile(_REPO + r"/commits/(?P<ref>[^/]+)/statuses"), self._statuses),
            # The older path of the same list, still served; PyGithub's Commit.get_statuses uses it.
            ("GET", re.compile(_REPO + r"/statuses/(?P<ref>[^/]+)"), self._statuses),
            ("GET", re.compile(_REPO + r"/commits/(?P<ref>[^/]+)/status"), self._combined_status),
            ("GET", re.compile(_REPO + r"/commits/(?P<sha>[^/]+)/pulls"), self._commit_pulls),
            ("GET", re.compile(_REPO + r"/pulls"), self._pulls),
            ("GET", re.compile(_REPO + r"/pulls/(?P<number>\d+)"), self._pull),
            ("GET", re.compile(_REPO + r"/pulls/(?P<number>\d+)/files"), self._pull_files),
        ]

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        """Serve both listeners from background threads; returns self."""
        if not self._threads:
            for server in (self._api, self._storage):
                # A short poll interval, because stop() waits for the serving loop to notice.
                thread = threading.Thread(
                    target=server.serve_forever, args=(0.05,), name=f"fake-github-{server.role}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close the sockets; the instance cannot be started again."""
        for server in (self._api, self._storage):
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- configuration -----------------------------------------------------------------

    def repo(
        self,
        full_name: str,
        default_branch: str | None = None,
        installation_id: int | None = None,
        *,
        repo_id: int | None = None,
    ) -> FakeRepo:
        """The repository with this full name, created on first use (default branch "main")."""
        with self._lock:
            found = self._repos.get(full_name.lower())
            if found is None:
                found = FakeRepo(self, full_name, default_branch or "main", installation_id, repo_id or self._next_id())
                self._repos[full_name.lower()] = found
            else:
                if default_branch is not None:
                    found.default_branch = default_branch
                if installation_id is not None:
                    found.installation_id = installation_id
            return found

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        status: int = 502,
        times: int = 1,
        *,
        server: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next `times` requests whose path starts with `path_prefix` with `status`.

        `server` limits it to "api" or "storage"; `headers` are added (Retry-After, say).
        Failed requests are recorded and, on the API, count against the rate limit.
        """
        with self._lock:
            self._failures.append(_Failure(method.upper(), path_prefix, status, times, server, headers or {}))

    # -- inspection --------------------------------------------------------------------

    def calls(self, method: str, path: str, *, server: str | None = None) -> list[RecordedRequest]:
        """The recorded requests with this method and exact path (no query), oldest first."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method.upper() and r.path == path and (server is None or r.server == server)
            ]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def storage_saw_authorization(self) -> bool:
        """Whether any request to the storage server carried an Authorization header."""
        with self._lock:
            return any("authorization" in r.headers for r in self.requests if r.server == "storage")

    @property
    def jwt_claims(self) -> list[Json]:
        """The (unverified) payloads of the app JWTs received, oldest first."""
        claims = []
        for token in list(self.app_jwts):
            payload = token.split(".")[1]
            claims.append(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
        return claims

    # -- dispatch ----------------------------------------------------------------------

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _dispatch(self, request: RecordedRequest) -> _Response:
        # One lock around the whole request: data edits and counters stay consistent even
        # with many client threads, and the fake is far from being a bottleneck.
        with self._lock:
            self.requests.append(request)
            if request.server == "storage":
                try:
                    return self._failure(request) or self._serve_storage(request)
                except Exception as exc:  # a bug in the fake: say so rather than hang the client
                    self.errors.append(f"storage {request.method} {request.path}: {exc!r}")
                    return _error(500, f"fake GitHub error: {exc!r}")
            try:
                exhausted = self.rate_remaining <= 0
                self.rate_remaining = max(self.rate_remaining - 1, 0)
                if exhausted:
                    response = _error(403, "API rate limit exceeded for installation.")
                else:
                    response = self._failure(request) or self._serve_api(request)
            except Exception as exc:  # a bug in the fake: say so rather than hang the client
                self.errors.append(f"{request.method} {request.path}: {exc!r}")
                response = _error(500, f"fake GitHub error: {exc!r}")
            response.headers.update(self._rate_headers())
            return response

    def _rate_headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(self.rate_remaining),
            "X-RateLimit-Reset": str(self.rate_reset),
            "X-RateLimit-Used": str(max(self.rate_limit - self.rate_remaining, 0)),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
        }

    def _failure(self, request: RecordedRequest) -> _Response | None:
        for failure in self._failures:
            if (
                failure.remaining > 0
                and failure.method == request.method
                and request.path.startswith(failure.path_prefix)
                and failure.server in (None, request.server)
            ):
                failure.remaining -= 1
                if failure.remaining == 0:
                    self._failures.remove(failure)
                response = _error(failure.status)
                response.headers.update(failure.headers)
                return response
        return None

    def _serve_api(self, request: RecordedRequest) -> _Response:
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is not None and method == request.method:
                return handler(request, **{k: unquote(v) for k, v in match.groupdict().items()})
        return _error(404)  # GitHub answers 404, not 405, to a method a route does not take

    def _find_repo(self, owner: str, repo: str) -> FakeRepo | None:
        return self._repos.get(f"{owner}/{repo}".lower())

    def _authorized(self, request: RecordedRequest) -> bool:
        if not self.require_token:
            return True
        scheme, _, token = (request.authorization or "").partition(" ")
        return scheme.lower() in ("token", "bearer") and (token in self.issued_tokens or token in self.accepted_tokens)

    def _repo_or_error(self, request: RecordedRequest, owner: str, repo: str) -> FakeRepo | _Response:
        login = self._user_token_login(request)
        if login is None and not self._authorized(request):
            return _error(401, "Bad credentials")
        found = self._find_repo(owner, repo)
        if found is None:
            return _error(404)
        # A person's token sees a private repository only if they may read it; GitHub says 404, not 403.
        if login is not None and found.private and login.lower() not in {reader.lower() for reader in found.readers}:
            return _error(404)
        return found

    # -- sign-in -----------------------------------------------------------------------

    def oauth_client(self, client_id: str, client_secret: str) -> None:
        with self._lock:
            self.oauth_clients[client_id] = client_secret

    def team(self, org: str, slug: str, members: Iterable[str]) -> None:
        with self._lock:
            self.teams[(org.lower(), slug.lower())] = list(members)

    def _user_token_login(self, request: RecordedRequest) -> str | None:
        scheme, _, token = (request.authorization or "").partition(" ")
        if scheme.lower() not in ("token", "bearer"):
            return None
        return self.user_tokens.get(token)

    def _oauth_authorize(self, request: RecordedRequest) -> _Response:
        """GitHub's authorize page, as a person already signed in who has authorized the app before:
        straight back to the redirect URI with a code and the state."""
        client_id = _param(request, "client_id", None)
        redirect_uri = _param(request, "redirect_uri", None)
        state = _param(request, "state", None) or ""
        if client_id not in self.oauth_clients or not redirect_uri:
            return _Response(404, b"Not Found", {"Content-Type": "text/plain"})
        if self.signed_in_as is None:
            return _Response(200, b"<h1>Sign in to GitHub</h1>", {"Content-Type": "text/html"})
        code = secrets.token_hex(10)
        self.oauth_codes[code] = (client_id, redirect_uri, self.signed_in_as)
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode({'code': code, 'state': state})}"
        return _Response(302, b"", {"Location": location})

    def _oauth_access_token(self, request: RecordedRequest) -> _Response:
        form = {key: values[0] for key, values in parse_qs(request.body.decode()).items()}
        code = form.get("code", "")
        found = self.oauth_codes.pop(code, None)
        # GitHub answers these mistakes with 200 and an error, not with an HTTP error.
        if self.oauth_clients.get(form.get("client_id", "")) != form.get("client_secret"):
            return _json_response(200, {"error": "incorrect_client_credentials"})
        if found is None or found[0] != form.get("client_id"):
            return _json_response(200, {"error": "bad_verification_code"})
        if form.get("redirect_uri") and form["redirect_uri"] != found[1]:
            return _json_response(200, {"error": "redirect_uri_mismatch"})
        token = "ghu_" + secrets.token_hex(18)
        self.user_tokens[token] = found[2]
        return _json_response(200, {"access_token": token, "token_type": "bearer", "scope": "repo,read:org"})

    def _signed_in_user(self, request: RecordedRequest) -> _Response:
        login = self._user_token_login(request)
        if login is None:
            return _error(401, "Requires authentication")
        return _json_response(200, {**self._user(login), "name": self.user_names.get(login)})

    def _team_members(self, request: RecordedRequest, org: str, slug: str) -> _Response:
        login = self._user_token_login(request)
        if login is None and not self._authorized(request):
            return _error(401, "Requires authentication")
        members = self.teams.get((org.lower(), slug.lower()))
        if members is None:
            return _error(404)
        chunk, links = self._paginate(request, [self._user(member) for member in members])
        return _json_response(200, chunk, links)

    def _one(self, request: RecordedRequest, owner: str, repo: str, render: Callable[[FakeRepo], Json]) -> _Response:
        """A GET of one thing of a repository: `render` finds it (KeyError: there is none, 404)."""
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            return _json_response(200, render(found))
        except KeyError:
            return _error(404)

    def _paginate(self, request: RecordedRequest, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        """One page of `items`, and the Link header GitHub would send with it."""
        per_page = _int_param(request, "per_page", DEFAULT_PER_PAGE)
        per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
        page = max(_int_param(request, "page", 1), 1)
        last = max(math.ceil(len(items) / per_page), 1)
        chunk = items[(page - 1) * per_page : page * per_page]

        def link(number: int, rel: str) -> str:
            query = {**request.query, "page": [str(number)]}  # keeps the caller's order, page last if new
            return f'<{self.url}{request.path}?{urlencode(query, doseq=True)}>; rel="{rel}"'

        links = []
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links.append(link(1, "first"))
        return chunk, ({"Link": ", ".join(links)} if links else {})

    # -- API routes --------------------------------------------------------------------

    def _rate_limit_route(self, request: RecordedRequest) -> _Response:
        core = {
            "limit": self.rate_limit,
            "remaining": self.rate_remaining,
            "reset": self.rate_reset,
            "used": self.rate_limit - self.rate_remaining,
            "resource": "core",
        }
        return _json_response(200, {"resources": {"core": core}, "rate": core})

    def _user(self, login: str) -> Json:
        user_id = zlib.crc32(login.encode())
        return {
            "login": login,
            "id": user_id,
            "node_id": _node_id("User", user_id),
            "type": "User",
            "url": f"{self.url}/users/{login}",
            "html_url": f"{self.html_base}/{login}",
        }

    def _bot_user(self) -> Json:
        """The app's bot account, which writes what an installation token writes."""
        bot = self._user(f"{APP_SLUG}[bot]")
        bot["type"] = "Bot"
        return bot

    def _app_json(self) -> Json:
        return {
            "id": self.app_id,
            "slug": APP_SLUG,
            "node_id": _node_id("App", self.app_id),
            "name": "Milestone Gate",
            "description": "",
            "external_url": f"{self.html_base}/apps/{APP_SLUG}",
            "html_url": f"{self.html_base}/apps/{APP_SLUG}",
            "created_at": iso(BASE_TIME),
            "updated_at": iso(BASE_TIME),
            "permissions": dict(self.installation_permissions),
            "events": ["issues", "milestone", "workflow_run"],
        }

    def _mini_repo(self, repo: FakeRepo) -> Json:
        owner = self._user(repo.owner)
        owner["type"] = "Organization"
        return {
            "id": repo.id,
            "node_id": _node_id("Repository", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": owner,
            "private": repo.private,
            "html_url": repo.html_url,
            "url": repo.api_url,
        }

    def _repository(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        api = found.api_url
        body = {
            **self._mini_repo(found),
            "description": None,
            "fork": False,
            "visibility": "private" if found.private else "public",
            "archived": False,
            "disabled": False,
            "default_branch": found.default_branch,
            "created_at": iso(BASE_TIME),
            "updated_at": iso(BASE_TIME),
            "pushed_at": iso(BASE_TIME),
            "has_issues": True,
            "open_issues_count": sum(1 for issue in found.issues if issue["state"] == "open"),
            "milestones_url": f"{api}/milestones{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "labels_url": f"{api}/labels{{/name}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "hooks_url": f"{api}/hooks",
            "permissions": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
        }
        return _json_response(200, body)

    def _milestone_json(self, repo: FakeRepo, milestone: Json | None) -> Json | None:
        return None if milestone is None else self._milestone_body(repo, milestone)

    def _milestone_body(self, repo: FakeRepo, milestone: Json) -> Json:
        body = dict(milestone)
        # GitHub counts issues and PRs alike; explicit values in the dict win.
        mine = [i for i in repo.issues if (i.get("milestone") or {}).get("number") == milestone["number"]]
        body.setdefault("open_issues", sum(1 for i in mine if i["state"] == "open"))
        body.setdefault("closed_issues", sum(1 for i in mine if i["state"] == "closed"))
        return body

    def _milestones(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        state = _param(request, "state", "open")
        chosen = [m for m in found.milestones if state == "all" or m["state"] == state]
        if _param(request, "sort", "due_on") == "completeness":
            chosen.sort(key=lambda m: _completeness(self._milestone_body(found, m)))
        else:
            # GitHub's default: soonest due date first; milestones without one come last.
            chosen.sort(key=lambda m: (m["due_on"] is None, m["due_on"] or "", m["number"]))
        if _param(request, "direction", "asc") == "desc":
            chosen.reverse()
        page, headers = self._paginate(request, chosen)
        return _json_response(200, [self._milestone_body(found, m) for m in page], headers)

    def _milestone(self, request: RecordedRequest, owner: str, repo: str, number: str) -> _Response:
        return self._one(request, owner, repo, lambda found: self._milestone_body(found, found.milestone(int(number))))

    def _create_milestone(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        """POST /repos/{owner}/{repo}/milestones: `title` required; `state`, `description` and
        `due_on` (an ISO 8601 timestamp) optional; a title in use is 422 already_exists."""
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        body = self._json_body(request)
        if isinstance(body, _Response):
            return body
        problems = []
        if not isinstance(body.get("title"), str):
            problems.append('"title" wasn\'t supplied.' if "title" not in body else '"title" is not a string.')
        problems += _not_one_of(body, "state", ("open", "closed"))
        for key in ("description", "due_on"):
            if key in body and body[key] is not None and not isinstance(body[key], str):
                problems.append(f'"{key}" is not a string.')
        due_on = body.get("due_on")
        if isinstance(due_on, str):
            try:
                datetime.fromisoformat(due_on.replace("Z", "+00:00"))
            except ValueError:
                problems.append(f'"{due_on}" is not a timestamp.')
        if problems:
            return _invalid_request(problems)
        if any(milestone["title"] == body["title"] for milestone in found.milestones):
            error = {"resource": "Milestone", "code": "already_exists", "field": "title"}
            return _error(422, "Validation Failed", [error])
        number = max((milestone["number"] for milestone in found.milestones), default=0) + 1
        milestone = found.add_milestone(
            number,
            body["title"],
            state=body.get("state") or "open",
            description=body.get("description") or "",
            created_at=datetime.now(UTC),
        )
        if isinstance(due_on, str):
            milestone["due_on"] = due_on
        return _json_response(201, self._milestone_body(found, milestone))

    def _update_milestone(self, request: RecordedRequest, owner: str, repo: str, number: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        body = self._json_body(request)
        if isinstance(body, _Response):
            return body
        problems = _not_one_of(body, "state", ("open", "closed")) if "state" in body else []
        if problems:
            return _invalid_request(problems)
        try:
            milestone = found.milestone(int(number))
        except KeyError:
            return _error(404)
        for key in ("title", "description", "due_on"):
            if key in body:
                milestone[key] = body[key]
        if "state" in body and body["state"] != milestone["state"]:
            milestone["state"] = body["state"]
            milestone["closed_at"] = iso(datetime.now(UTC)) if body["state"] == "closed" else None
        milestone["updated_at"] = iso(datetime.now(UTC))
        return _json_response(200, self._milestone_body(found, milestone))

    def _issue_json(self, repo: FakeRepo, issue: Json) -> Json:
        return {**issue, "milestone": self._milestone_json(repo, issue.get("milestone"))}

    def _issues(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        state = _param(request, "state", "open")
        wanted = {name.strip().lower() for name in _param(request, "labels", "").split(",") if name.strip()}
        milestone = _param(request, "milestone", None)
        since = _param(request, "since", None)
        chosen = []
        for issue in found.issues:
            names = {label["name"].lower() for label in issue["labels"]}
            number = (issue.get("milestone") or {}).get("number")
            if state != "all" and issue["state"] != state:
                continue
            if not wanted <= names:  # labels=a,b means a AND b
                continue
            if milestone == "none" and number is not None or milestone == "*" and number is None:
                continue
            if milestone not in (None, "none", "*") and str(number) != milestone:
                continue
            if since is not None and _parse_iso(issue["updated_at"]) < _parse_iso(since):
                continue
            chosen.append(issue)
        key = "updated_at" if _param(request, "sort", "created") == "updated" else "created_at"
        chosen.sort(key=lambda i: (i[key], i["number"]), reverse=_param(request, "direction", "desc") == "desc")
        page, headers = self._paginate(request, chosen)
        return _json_response(200, [self._issue_json(found, i) for i in page], headers)

    def _issue(self, request: RecordedRequest, owner: str, repo: str, number: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        for issue in found.issues:
            if issue["number"] == int(number):
                return _json_response(200, self._issue_json(found, issue))
        return _error(404)

    def _file(self, repo: FakeRepo, path: str, ref: str | None) -> bytes | None:
        path = path.strip("/")
        if ref is None or ref == repo.default_branch:
            # The default branch may be configured either way: (path, None) or (path, "main").
            return repo.files.get((path, ref), repo.files.get((path, None)))
        return repo.files.get((path, ref))

    def _contents(self, request: RecordedRequest, owner: str, repo: str, path: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        ref = _param(request, "ref", None)
        data = self._file(found, path, ref)
        if data is None:
            return _error(404)
        path = path.strip("/")
        ref_name = ref or found.default_branch
        sha = _git_blob_sha(data)
        url = f"{found.api_url}/contents/{quote(path)}?ref={quote(ref_name, safe='')}"
        git_url = f"{found.api_url}/git/blobs/{sha}"
        html_url = f"{found.html_url}/blob/{ref_name}/{path}"
        body = {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": _encode64(data),
            "sha": sha,
            "url": url,
            "git_url": git_url,
            "html_url": html_url,
            "download_url": f"{self.url}/raw/{found.full_name}/{quote(ref_name, safe='')}/{quote(path)}",
            "_links": {"self": url, "git": git_url, "html": html_url},
        }
        return _json_response(200, body)

    def _raw(self, request: RecordedRequest, owner: str, repo: str, ref: str, path: str) -> _Response:
        found = self._find_repo(owner, repo)
        data = None if found is None else self._file(found, path, ref)
        if data is None:
            return _Response(404, b"404: Not Found", {"Content-Type": "text/plain; charset=utf-8"})
        return _Response(200, data, {"Content-Type": "text/plain; charset=utf-8"})

    def _workflows(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        page, headers = self._paginate(request, found.workflows)
        return _json_response(200, {"total_count": len(found.workflows), "workflows": page}, headers)

    def _workflow(self, request: RecordedRequest, owner: str, repo: str, workflow: str) -> _Response:
        return self._one(request, owner, repo, lambda found: found.workflow(workflow))

    def _runs(self, request: RecordedRequest, owner: str, repo: str, workflow: str | None = None) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        runs = found.runs
        if workflow is not None:
            try:
                workflow_id = found.workflow(workflow)["id"]
            except KeyError:
                return _error(404)
            runs = [run for run in runs if run["workflow_id"] == workflow_id]
        status = _param(request, "status", None)
        filters = {key: _param(request, key, None) for key in ("branch", "event", "head_sha")}
        chosen = []
        for run in runs:
            # GitHub's status filter takes a status (completed, queued) or a conclusion (success).
            if status is not None and status not in (run["status"], run["conclusion"]):
                continue
            if filters["branch"] is not None and run["head_branch"] != filters["branch"]:
                continue
            if filters["event"] is not None and run["event"] != filters["event"]:
                continue
            if filters["head_sha"] is not None and run["head_sha"] != filters["head_sha"]:
                continue
            chosen.append(run)
        chosen.sort(key=lambda run: (run["created_at"], run["id"]), reverse=True)  # newest first
        page, headers = self._paginate(request, chosen)
        return _json_response(200, {"total_count": len(chosen), "workflow_runs": page}, headers)

    def _run(self, request: RecordedRequest, owner: str, repo: str, run: str) -> _Response:
        return self._one(request, owner, repo, lambda found: found.run(int(run)))

    def _run_artifacts(self, request: RecordedRequest, owner: str, repo: str, run: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        if not any(r["id"] == int(run) for r in found.runs):
            return _error(404)
        name = _param(request, "name", None)
        chosen = [
            a for a in found.artifacts if a["workflow_run"]["id"] == int(run) and (name is None or a["name"] == name)
        ]
        page, headers = self._paginate(request, chosen)
        return _json_response(200, {"total_count": len(chosen), "artifacts": page}, headers)

    def _artifact(self, request: RecordedRequest, owner: str, repo: str, artifact: str) -> _Response:
        return self._one(request, owner, repo, lambda found: found.artifact(int(artifact)))

    def _artifact_zip(self, request: RecordedRequest, owner: str, repo: str, artifact: str) -> _Response:
        # GitHub wants a token for archive downloads even on public repositories.
        if request.authorization is None:
            return _error(401, "Requires authentication")
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            record = found.artifact(int(artifact))
        except KeyError:
            return _error(404)
        if record["expired"]:
            return _error(410, "Artifact has expired")
        location = f"{self.storage_url}/blobs/{record['id']}?sig={self._signature(record['id'])}"
        return _Response(302, b"", {"Location": location})

    def _signature(self, artifact_id: int) -> str:
        return hmac.new(self._signing_key, str(artifact_id).encode(), hashlib.sha256).hexdigest()[:32]

    # -- checks, statuses and pull requests --------------------------------------------

    def _json_body(self, request: RecordedRequest) -> Json | _Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        return body if isinstance(body, dict) else _error(400, "Problems parsing JSON")

    def _installation_token(self, request: RecordedRequest) -> bool:
        """Whether the request carries an installation token this fake issued (not just an accepted one)."""
        scheme, _, token = (request.authorization or "").partition(" ")
        return scheme.lower() in ("token", "bearer") and token in self.issued_tokens

    def _pull_ref(self, pull: Json) -> Json:
        """A pull request as check runs list it: numbers and branches only."""

        def end(part: Json) -> Json:
            repo = part["repo"]
            return {"ref": part["ref"], "sha": part["sha"], "repo": {k: repo[k] for k in ("id", "url", "name")}}

        return {
            "url": pull["url"],
            "id": pull["id"],
            "number": pull["number"],
            "head": end(pull["head"]),
            "base": end(pull["base"]),
        }

    def _check_run_json(self, repo: FakeRepo, check_run: Json) -> Json:
        body = {key: value for key, value in check_run.items() if key not in _CHECK_RUN_PRIVATE}
        body["output"] = {**check_run["output"], "annotations_count": len(check_run["annotations"])}
        # GitHub lists the open pull requests of this repository whose head is the run's commit.
        body["pull_requests"] = check_run["pull_requests"] or [
            self._pull_ref(p) for p in repo.pulls if p["head"]["sha"] == check_run["head_sha"] and p["state"] == "open"
        ]
        return body

    def _check_run_writer(self, request: RecordedRequest, owner: str, repo: str) -> FakeRepo | _Response:
        """The repository a check run is written to, or why GitHub would refuse the writer."""
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        if not self._installation_token(request):
            return _error(403, "You must authenticate via a GitHub App.")
        return found

    def _check_run_body(self, request: RecordedRequest) -> Json | _Response:
        """The body of a check-run write, or the 4xx GitHub answers to it."""
        body = self._json_body(request)
        if isinstance(body, _Response):
            return body
        problems = _check_run_problems(body, create=request.method == "POST")
        if problems:
            return _invalid_request(problems)
        output = body.get("output") or {}
        for key in ("summary", "text"):
            # Past the schema's character count, the model also counts UTF-8 bytes.
            if isinstance(output.get(key), str) and len(output[key].encode()) > MAX_OUTPUT_CHARS:
                return _validation_failed("CheckRun", key, f"{key} exceeds a maximum bytesize of {MAX_OUTPUT_CHARS}")
        return body

    def _create_check_run(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        found = self._check_run_writer(request, owner, repo)
        if isinstance(found, _Response):
            return found
        body = self._check_run_body(request)
        if isinstance(body, _Response):
            return body
        check_run = found.add_check_run(
            body["name"],
            body["head_sha"],
            body.get("status") or "queued",
            body.get("conclusion"),
            details_url=body.get("details_url"),
            external_id=body.get("external_id") or "",
            started_at=body.get("started_at") and iso(_parse_iso(body["started_at"])),
            completed_at=body.get("completed_at") and iso(_parse_iso(body["completed_at"])),
            output=body.get("output"),
            actions=body.get("actions") or (),
        )
        return _json_response(201, self._check_run_json(found, check_run))

    def _update_check_run(self, request: RecordedRequest, owner: str, repo: str, check_run: str) -> _Response:
        found = self._check_run_writer(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            stored = found.check_run(int(check_run))  # only this repository's: another's id is unknown here
        except KeyError:
            return _error(404)
        body = self._check_run_body(request)
        if isinstance(body, _Response):
            return body
        for key in ("name", "details_url", "external_id"):
            if key in body:
                stored[key] = body[key]
        for key in ("started_at", "completed_at"):
            if key in body:
                stored[key] = body[key] and iso(_parse_iso(body[key]))
        if body.get("status") is not None:
            stored["status"] = body["status"]
        if body.get("conclusion") is not None:
            stored["conclusion"] = body["conclusion"]
            stored["status"] = "completed"  # a conclusion completes the run, as on create
        if stored["status"] != "completed":
            stored["conclusion"] = stored["completed_at"] = None
        elif stored["completed_at"] is None:
            stored["completed_at"] = iso(_parse_iso(stored["started_at"]) + timedelta(minutes=5))
        if "output" in body:
            output = body["output"]
            stored["output"].update({key: output[key] for key in ("title", "summary", "text") if key in output})
            stored["annotations"] += [dict(a) for a in output.get("annotations") or []]  # appended, as on GitHub
            if "images" in output:
                stored["images"] = [dict(i) for i in output["images"] or []]
        if "actions" in body:
            stored["actions"] = [dict(a) for a in body["actions"] or []]
        return _json_response(200, self._check_run_json(found, stored))

    def _check_run(self, request: RecordedRequest, owner: str, repo: str, check_run: str) -> _Response:
        return self._one(
            request, owner, repo, lambda found: self._check_run_json(found, found.check_run(int(check_run)))
        )

    def _check_run_annotations(self, request: RecordedRequest, owner: str, repo: str, check_run: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            stored = found.check_run(int(check_run))
        except KeyError:
            return _error(404)
        served = [
            {
                "path": a.get("path"),
                "blob_href": f"{found.html_url}/blob/{stored['head_sha']}/{a.get('path')}",
                "start_line": a.get("start_line"),
                "start_column": a.get("start_column"),
                "end_line": a.get("end_line"),
                "end_column": a.get("end_column"),
                "annotation_level": a.get("annotation_level"),
                "title": a.get("title"),
                "message": a.get("message"),
                "raw_details": a.get("raw_details"),
            }
            for a in stored["annotations"]
        ]
        page, headers = self._paginate(request, served)
        return _json_response(200, page, headers)

    def _commit_check_runs(self, request: RecordedRequest, owner: str, repo: str, ref: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        name = _param(request, "check_name", None)
        status = _param(request, "status", None)
        chosen = sorted(found.check_runs_for(ref, name), key=lambda r: r["id"], reverse=True)  # newest first
        if _param(request, "filter", "latest") == "latest":
            # GitHub's default: only the most recent run of each name.
            latest: dict[str, Json] = {}
            for check_run in chosen:
                latest.setdefault(check_run["name"], check_run)
            chosen = list(latest.values())
        chosen = [r for r in chosen if status is None or r["status"] == status]
        page, headers = self._paginate(request, chosen)
        body = {"total_count": len(chosen), "check_runs": [self._check_run_json(found, r) for r in page]}
        return _json_response(200, body, headers)

    def _status_json(self, status: Json) -> Json:
        return {key: value for key, value in status.items() if key not in _STATUS_PRIVATE}

    def _create_status(self, request: RecordedRequest, owner: str, repo: str, sha: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        body = self._json_body(request)
        if isinstance(body, _Response):
            return body
        problems = _missing(body, ("state",)) + _not_one_of(body, "state", STATUS_STATES)
        if problems:
            return _invalid_request(problems)
        description = body.get("description")
        if isinstance(description, str) and len(description) > MAX_STATUS_DESCRIPTION:
            message = f"description is too long (maximum is {MAX_STATUS_DESCRIPTION} characters)"
            return _validation_failed("Status", "description", message)
        status = found.add_status(
            sha,
            body["state"],
            target_url=body.get("target_url"),
            description=description,
            context=body.get("context") or "default",
            # An app's installation token writes as its bot; any other token as a user.
            creator=self._bot_user() if self._installation_token(request) else "octocat",
        )
        return _json_response(201, self._status_json(status))

    def _statuses_of(self, repo: FakeRepo, ref: str) -> list[Json]:
        return sorted((s for s in repo.statuses if s["sha"] == ref), key=lambda s: s["id"], reverse=True)

    def _statuses(self, request: RecordedRequest, owner: str, repo: str, ref: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        page, headers = self._paginate(request, self._statuses_of(found, ref))  # newest first
        return _json_response(200, [self._status_json(s) for s in page], headers)

    def _combined_status(self, request: RecordedRequest, owner: str, repo: str, ref: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        latest: dict[str, Json] = {}
        for status in self._statuses_of(found, ref):
            latest.setdefault(status["context"], status)
        page, headers = self._paginate(request, list(latest.values()))
        body = {
            "state": _combined_state(s["state"] for s in latest.values()),
            "statuses": [{k: v for k, v in self._status_json(s).items() if k != "creator"} for s in page],
            "sha": ref,
            "total_count": len(latest),
            "repository": self._mini_repo(found),
            "commit_url": f"{found.api_url}/commits/{ref}",
            "url": f"{found.api_url}/commits/{ref}/status",
        }
        return _json_response(200, body, headers)

    def _pull_json(self, repo: FakeRepo, pull: Json, full: bool = True) -> Json:
        body = {key: value for key, value in pull.items() if key != "files"}
        body["milestone"] = self._milestone_json(repo, pull.get("milestone"))
        if full:
            # Counted from the files unless the dict says otherwise.
            body.setdefault("additions", sum(f["additions"] for f in pull["files"]))
            body.setdefault("deletions", sum(f["deletions"] for f in pull["files"]))
            body.setdefault("changed_files", len(pull["files"]))
        else:
            for key in _PULL_DETAIL:
                body.pop(key, None)
        return body

    def _pull(self, request: RecordedRequest, owner: str, repo: str, number: str) -> _Response:
        return self._one(request, owner, repo, lambda found: self._pull_json(found, found.pull(int(number))))

    def _pull_files(self, request: RecordedRequest, owner: str, repo: str, number: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            pull = found.pull(int(number))
        except KeyError:
            return _error(404)
        page, headers = self._paginate(request, pull["files"][:MAX_PULL_FILES])
        return _json_response(200, page, headers)

    def _pulls(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        """Pull requests by state (open by default), newest first, as GitHub lists them."""
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        state = _param(request, "state", "open")
        chosen = [p for p in reversed(found.pulls) if state == "all" or p["state"] == state]
        page, headers = self._paginate(request, chosen)
        return _json_response(200, [self._pull_json(found, p, full=False) for p in page], headers)

    def _commit_pulls(self, request: RecordedRequest, owner: str, repo: str, sha: str) -> _Response:
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        chosen = [p for p in found.pulls if p["head"]["sha"] == sha]
        page, headers = self._paginate(request, chosen)
        return _json_response(200, [self._pull_json(found, p, full=False) for p in page], headers)

    # -- GitHub App routes -------------------------------------------------------------

    def _app_jwt(self, request: RecordedRequest) -> _Response | None:
        """Record the app's JWT; any bearer shaped like a JWT is accepted, nothing is verified."""
        scheme, _, token = (request.authorization or "").partition(" ")
        if scheme.lower() != "bearer" or token.count(".") != 2:
            return _error(401, "A JSON web token could not be decoded")
        self.app_jwts.append(token)
        return None

    def _installation_json(self, installation_id: int, owner: str) -> Json:
        account = self._user(owner)
        account["type"] = "Organization"
        return {
            "id": installation_id,
            "account": account,
            "app_id": self.app_id,
            "app_slug": APP_SLUG,
            "target_id": account["id"],
            "target_type": "Organization",
            "repository_selection": "selected",
            "access_tokens_url": f"{self.url}/app/installations/{installation_id}/access_tokens",
            "repositories_url": f"{self.url}/installation/repositories",
            "html_url": f"{self.html_base}/organizations/{owner}/settings/installations/{installation_id}",
            "permissions": dict(self.installation_permissions),
            "events": ["issues", "milestone", "workflow_run"],
            "created_at": iso(BASE_TIME),
            "updated_at": iso(BASE_TIME),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def _repo_installation(self, request: RecordedRequest, owner: str, repo: str) -> _Response:
        denied = self._app_jwt(request)
        if denied is not None:
            return denied
        found = self._find_repo(owner, repo)
        if found is None or found.installation_id is None:
            return _error(404)
        return _json_response(200, self._installation_json(found.installation_id, found.owner))

    def _installation_owner(self, installation_id: int) -> str | None:
        for repo in self._repos.values():
            if repo.installation_id == installation_id:
                return repo.owner
        return None

    def _installation_by_id(self, request: RecordedRequest, installation: str) -> _Response:
        denied = self._app_jwt(request)
        if denied is not None:
            return denied
        owner = self._installation_owner(int(installation))
        if owner is None:
            return _error(404)
        return _json_response(200, self._installation_json(int(installation), owner))

    def _access_token(self, request: RecordedRequest, installation: str) -> _Response:
        denied = self._app_jwt(request)
        if denied is not None:
            return denied
        if self._installation_owner(int(installation)) is None:
            return _error(404)
        requested = (request.json() or {}).get("permissions") or {}
        self.tokens_issued += 1
        token = f"ghs_{self.tokens_issued}"
        self.issued_tokens.append(token)
        body = {
            "token": token,
            "expires_at": iso(datetime.now(UTC) + self.token_lifetime),
            "permissions": dict(requested or self.installation_permissions),
            "repository_selection": "selected",
        }
        return _json_response(201, body)

    # -- storage -----------------------------------------------------------------------

    def _serve_storage(self, request: RecordedRequest) -> _Response:
        match = re.fullmatch(r"/blobs/(\d+)", request.path)
        if match is None or request.method != "GET":
            return _Response(404, b"BlobNotFound", {"Content-Type": "text/plain"})
        artifact_id = int(match.group(1))
        if "authorization" in request.headers and self.storage_rejects_authorization:
            return _Response(
                400,
                b"InvalidAuthenticationInfo: signed URL and Authorization both given",
                {"Content-Type": "text/plain"},
            )
        if not hmac.compare_digest(_param(request, "sig", "") or "", self._signature(artifact_id)):
            return _Response(403, b"AuthenticationFailed: bad signature", {"Content-Type": "text/plain"})
        for repo in self._repos.values():
            if artifact_id in repo.artifact_zips:
                name = repo.artifact(artifact_id)["name"]
                return _Response(
                    200,
                    repo.artifact_zips[artifact_id],
                    {"Content-Type": "application/zip", "Content-Disposition": f'attachment; filename="{name}.zip"'},
                )
        return _Response(404, b"BlobNotFound", {"Content-Type": "text/plain"})


def _param(request: RecordedRequest, name: str, default: str | None) -> str | None:
    values = request.query.get(name)
    return values[-1] if values else default


def _int_param(request: RecordedRequest, name: str, default: int) -> int:
    try:
        return int(_param(request, name, None) or default)
    except ValueError:
        return default


def _completeness(milestone: Json) -> float:
    total = milestone["open_issues"] + milestone["closed_issues"]
    return milestone["closed_issues"] / total if total else 0.0


# -- request validation, in the words of GitHub's schema check -------------------------


def _missing(body: Json, keys: Iterable[str]) -> list[str]:
    return [f'"{key}" wasn\'t supplied.' for key in keys if body.get(key) is None]


def _not_one_of(body: Json, key: str, choices: Iterable[str], where: str = "properties") -> list[str]:
    value = body.get(key)
    if value is None or value in choices:
        return []
    return [f"For '{where}/{key}', {json.dumps(value)} is not one of {json.dumps(list(choices))}."]


def _too_long(value: Any, limit: int) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"Only {limit} characters are allowed; {len(value)} were supplied."]
    return []


def _too_many(items: Any, limit: int) -> list[str]:
    if isinstance(items, list) and len(items) > limit:
        return [f"No more than {limit} items are allowed; {len(items)} were supplied."]
    return []


def _not_object(value: Any, where: str) -> list[str]:
    return [] if isinstance(value, dict) else [f"For '{where}', {json.dumps(value)} is not an object."]


def _not_list(value: Any, where: str) -> list[str]:
    return [] if value is None or isinstance(value, list) else [f"For '{where}', {json.dumps(value)} is not an array."]


def _not_time(body: Json, keys: Iterable[str]) -> list[str]:
    problems = []
    for key in keys:
        value = body.get(key)
        try:
            if value is not None:
                _parse_iso(value)
        except (TypeError, ValueError):
            problems.append(f"For 'properties/{key}', {json.dumps(value)} is not a date-time.")
    return problems


def _check_run_problems(body: Json, create: bool) -> list[str]:
    """What GitHub's schema check finds wrong with a check run's create (or update) body."""
    problems = _missing(body, ("name", "head_sha")) if create else []
    problems += _not_one_of(body, "status", CHECK_STATUSES) + _not_one_of(body, "conclusion", CHECK_CONCLUSIONS)
    if body.get("status") == "completed" and body.get("conclusion") is None:
        problems.append('"conclusion" wasn\'t supplied.')
    problems += _not_time(body, ("started_at", "completed_at"))
    output = body.get("output")
    if output is not None:
        problems += _not_object(output, "properties/output")
    if isinstance(output, dict):
        # Create needs title and summary; update's schema needs summary, its docs title too.
        problems += _missing(output, ("title", "summary"))
        problems += _too_long(output.get("summary"), MAX_OUTPUT_CHARS) + _too_long(output.get("text"), MAX_OUTPUT_CHARS)
        annotations = output.get("annotations")
        problems += _not_list(annotations, "properties/annotations") + _too_many(annotations, MAX_ANNOTATIONS)
        for annotation in annotations if isinstance(annotations, list) else []:
            problems += _not_object(annotation, "items")
            if isinstance(annotation, dict):
                problems += _missing(annotation, ("path", "start_line", "end_line", "annotation_level", "message"))
                problems += _not_one_of(annotation, "annotation_level", ANNOTATION_LEVELS, "items")
                for key in ("start_line", "end_line", "start_column", "end_column"):
                    value = annotation.get(key)
                    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                        problems.append(f"For 'items/{key}', {json.dumps(value)} is not an integer.")
        images = output.get("images")
        problems += _not_list(images, "properties/images")
        for image in images if isinstance(images, list) else []:
            problems += _not_object(image, "items")
            if isinstance(image, dict):
                problems += _missing(image, ("alt", "image_url"))
    actions = body.get("actions")
    problems += _not_list(actions, "properties/actions") + _too_many(actions, MAX_ACTIONS)
    for action in actions if isinstance(actions, list) else []:
        problems += _not_object(action, "items")
        if isinstance(action, dict):
            problems += _missing(action, ACTION_LIMITS)
            for key, limit in ACTION_LIMITS.items():
                problems += _too_long(action.get(key), limit)
    return problems


def _combined_state(states: Iterable[str]) -> str:
    """GitHub's combined state: failure if any failed or errored, pending if any pending or none, else success."""
    seen = set(states)
    if seen & {"error", "failure"}:
        return "failure"
    return "pending" if not seen or "pending" in seen else "success"
