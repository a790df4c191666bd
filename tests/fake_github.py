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
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

__all__ = ["FakeGitHub", "FakeRepo", "RecordedRequest", "BASE_TIME", "iso"]

# Every default timestamp is an offset from this, so runs of a test see identical data.
BASE_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100

Json = dict[str, Any]
When = datetime | date | str | None


def iso(value: datetime | date | str) -> str:
    """GitHub's timestamp format: UTC, seconds, a Z suffix."""
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _error(status: int, message: str | None = None) -> _Response:
    # GitHub's error body: a message, a documentation link, and (lately) the status as a string.
    return _json_response(
        status,
        {
            "message": message or HTTPStatus(status).phrase,
            "documentation_url": "https://docs.github.com/rest",
            "status": str(status),
        },
    )


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
        self.milestones: list[Json] = []
        self.issues: list[Json] = []
        self.files: dict[tuple[str, str | None], bytes] = {}
        self.workflows: list[Json] = []
        self.runs: list[Json] = []
        self.artifacts: list[Json] = []
        self.artifact_zips: dict[int, bytes] = {}

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
            body=self._read_body(),
        )
        response = self.server.fake._dispatch(request)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

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
        self._api = _Server(self, "api")
        self._storage = _Server(self, "storage")
        self.url = f"http://127.0.0.1:{self._api.server_address[1]}"
        self.storage_url = f"http://127.0.0.1:{self._storage.server_address[1]}"
        self._routes: list[_Route] = [
            ("GET", re.compile(r"/rate_limit"), self._rate_limit_route),
            ("GET", re.compile(r"/app/installations/(?P<installation>\d+)"), self._installation_by_id),
            ("POST", re.compile(r"/app/installations/(?P<installation>\d+)/access_tokens"), self._access_token),
            ("GET", re.compile(r"/raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)"), self._raw),
            ("GET", re.compile(_REPO), self._repository),
            ("GET", re.compile(_REPO + r"/installation"), self._repo_installation),
            ("GET", re.compile(_REPO + r"/milestones"), self._milestones),
            ("GET", re.compile(_REPO + r"/milestones/(?P<number>\d+)"), self._milestone),
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
        if not self._authorized(request):
            return _error(401, "Bad credentials")
        found = self._find_repo(owner, repo)
        return found if found is not None else _error(404)

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
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            return _json_response(200, self._milestone_body(found, found.milestone(int(number))))
        except KeyError:
            return _error(404)

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
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            return _json_response(200, found.workflow(workflow))
        except KeyError:
            return _error(404)

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
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            return _json_response(200, found.run(int(run)))
        except KeyError:
            return _error(404)

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
        found = self._repo_or_error(request, owner, repo)
        if isinstance(found, _Response):
            return found
        try:
            return _json_response(200, found.artifact(int(artifact)))
        except KeyError:
            return _error(404)

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
            "app_slug": "milestone-gate",
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
            "expires_at": iso(datetime.now(timezone.utc) + self.token_lifetime),
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
            return _Response(400, b"InvalidAuthenticationInfo: signed URL and Authorization both given",
                             {"Content-Type": "text/plain"})
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
