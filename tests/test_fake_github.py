"""The GitHub fake, driven by the real clients the service uses: PyGithub and httpx."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from github import Auth, Github, GithubException, GithubIntegration
from github.GithubException import BadCredentialsException, RateLimitExceededException, UnknownObjectException

from tests.fake_github import FakeGitHub, FakeRepo, RecordedRequest
from tests.github import make_zip, private_key_pem

TOKEN = "test-token"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def shop(fake: FakeGitHub) -> FakeRepo:
    return fake.repo("acme/shop", default_branch="main", installation_id=42)


def client(fake: FakeGitHub, auth: Auth.Auth | None = None, *, lazy: bool = False) -> Github:
    return Github(
        auth=auth or Auth.Token(TOKEN),
        base_url=fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        retry=None,
        lazy=lazy,
    )


def app_client(fake: FakeGitHub) -> Github:
    """Installation 42's client, lazy as the service's; its token is one the fake issued."""
    integration = GithubIntegration(
        auth=Auth.AppAuth(123, private_key_pem()),
        base_url=fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        lazy=True,
    )
    return integration.get_github_for_installation(42)


def seen(requests: list[RecordedRequest]) -> list[tuple[str, str, str, dict[str, list[str]]]]:
    """What a test asserts about recorded requests: server, method, path and query."""
    return [(r.server, r.method, r.path, r.query) for r in requests]


def add_ci(repo: FakeRepo) -> None:
    """A workflow with completed, running and other-branch runs, and artifacts on run 502."""
    repo.add_workflow(101, "CI", ".github/workflows/ci.yml")
    repo.add_workflow(102, "Nightly", ".github/workflows/nightly.yml")
    repo.add_run(501, 101, "a" * 40, "main", created_at="2024-02-01T10:00:00Z")
    repo.add_run(502, 101, "b" * 40, "main", run_attempt=2, conclusion="failure", created_at="2024-02-02T10:00:00Z")
    repo.add_run(503, 101, "c" * 40, "main", status="in_progress", created_at="2024-02-03T10:00:00Z")
    repo.add_run(504, 101, "d" * 40, "feature", created_at="2024-02-04T10:00:00Z")
    repo.add_run(505, 102, "e" * 40, "main", created_at="2024-02-05T10:00:00Z")


def test_repo_and_milestones_across_pages(fake: FakeGitHub, shop: FakeRepo) -> None:
    for number in range(1, 36):
        shop.add_milestone(number, f"v{number}", due_on=f"2024-03-{number % 28 + 1:02d}T07:00:00Z")
    shop.add_milestone(40, "Someday", state="closed", description="no date")
    shop.add_issue(1, milestone=3)
    shop.add_issue(2, state="closed", milestone=3)

    repo = client(fake).get_repo("acme/shop")
    milestones = list(repo.get_milestones(state="all"))

    assert (repo.full_name, repo.name, repo.owner.login, repo.default_branch) == ("acme/shop", "shop", "acme", "main")
    assert repo.id == shop.id
    assert len(milestones) == 36
    assert sorted(m.number for m in milestones) == [*range(1, 36), 40]
    # Default order is GitHub's: due date ascending, undated last.
    assert milestones[-1].title == "Someday" and milestones[-1].due_on is None
    assert milestones[-1].state == "closed" and milestones[-1].closed_at is not None
    v3 = next(m for m in milestones if m.number == 3)
    assert v3.due_on == datetime(2024, 3, 4, 7, tzinfo=UTC)
    assert (v3.open_issues, v3.closed_issues) == (1, 1)
    assert v3.html_url == "https://github.com/acme/shop/milestone/3"
    assert seen(fake.requests) == [
        ("api", "GET", "/repos/acme/shop", {}),
        ("api", "GET", "/repos/acme/shop/milestones", {"state": ["all"]}),
        ("api", "GET", "/repos/acme/shop/milestones", {"state": ["all"], "page": ["2"]}),
    ]
    assert all(r.headers["authorization"] == f"token {TOKEN}" for r in fake.requests)


def test_issues_filtered_by_labels_over_three_pages(fake: FakeGitHub, shop: FakeRepo) -> None:
    shop.add_milestone(7, "v2.0")
    for number in range(1, 76):
        shop.add_issue(
            number,
            f"Bug {number}",
            state="closed" if number % 5 == 0 else "open",
            labels=["Bug", "P1"] if number % 2 else ["p1", "bug", "ui"],
            milestone=7 if number <= 10 else None,
            pull_request=number == 75,
        )
    for number in range(76, 81):
        shop.add_issue(number, labels=["bug"])  # lacks P1: filtered out, labels are ANDed
    shop.add_issue(81, labels=[])

    repo = client(fake).get_repo("acme/shop")
    issues = list(repo.get_issues(state="all", labels=["bug", "P1"]))

    assert [i.number for i in issues] == list(range(75, 0, -1))  # newest first, as GitHub
    assert issues[0].pull_request is not None and issues[0].html_url.endswith("/pull/75")
    five = next(i for i in issues if i.number == 5)
    assert (five.state, five.state_reason, five.closed_at is not None) == ("closed", "completed", True)
    assert five.milestone.number == 7 and five.milestone.title == "v2.0"
    assert {label.name for label in five.labels} == {"Bug", "P1"}
    assert next(i for i in issues if i.number == 11).milestone is None
    issue_calls = fake.calls("GET", "/repos/acme/shop/issues")
    assert [r.query for r in issue_calls] == [
        {"state": ["all"], "labels": ["bug,P1"]},
        {"state": ["all"], "labels": ["bug,P1"], "page": ["2"]},
        {"state": ["all"], "labels": ["bug,P1"], "page": ["3"]},
    ]
    assert len(fake.requests) == 4
    # A plain issue has no pull_request key, so PyGithub fetches the issue again to look.
    assert issues[1].pull_request is None
    assert seen(fake.requests[4:]) == [("api", "GET", "/repos/acme/shop/issues/74", {})]


def test_link_header_and_per_page_like_github(fake: FakeGitHub, shop: FakeRepo) -> None:
    for number in range(1, 251):
        shop.add_issue(number)
    base = f"{fake.url}/repos/acme/shop/issues"

    middle = httpx.get(base, params={"state": "all", "per_page": 50, "page": 2})
    capped = httpx.get(base, params={"per_page": 500})
    last = httpx.get(base, params={"per_page": 100, "page": 3})

    assert [i["number"] for i in middle.json()] == list(range(200, 150, -1))
    assert middle.headers["link"] == ", ".join(
        [
            f'<{base}?state=all&per_page=50&page=1>; rel="prev"',
            f'<{base}?state=all&per_page=50&page=3>; rel="next"',
            f'<{base}?state=all&per_page=50&page=5>; rel="last"',
            f'<{base}?state=all&per_page=50&page=1>; rel="first"',
        ]
    )
    assert len(capped.json()) == 100  # per_page is capped at 100
    assert capped.headers["link"] == (
        f'<{base}?per_page=500&page=2>; rel="next", <{base}?per_page=500&page=3>; rel="last"'
    )
    assert len(last.json()) == 50
    assert 'rel="next"' not in last.headers["link"]
    assert "link" not in httpx.get(f"{fake.url}/repos/acme/shop/milestones").headers


def test_contents_with_ref_and_default_branch(fake: FakeGitHub, shop: FakeRepo) -> None:
    policy = b"plans:\n" + b"".join(b"  - name: suite-%d\n    workflow: ci.yml\n" % n for n in range(10))
    shop.files[(".github/milestones.yml", "release/2.0")] = policy
    shop.files[("README.md", None)] = b"# Shop\n"

    repo = client(fake).get_repo("acme/shop")
    on_branch = repo.get_contents(".github/milestones.yml", ref="release/2.0")
    default = repo.get_contents("README.md")
    also_default = repo.get_contents("README.md", ref="main")
    with pytest.raises(UnknownObjectException) as missing:
        repo.get_contents(".github/milestones.yml")

    assert on_branch.decoded_content == policy
    assert (on_branch.path, on_branch.name, on_branch.size) == (".github/milestones.yml", "milestones.yml", len(policy))
    assert on_branch.sha == hashlib.sha1(b"blob %d\0" % len(policy) + policy).hexdigest()
    assert default.decoded_content == also_default.decoded_content == b"# Shop\n"
    assert missing.value.status == 404 and missing.value.data["message"] == "Not Found"
    content_calls = [r for r in fake.requests if "/contents/" in r.path]
    assert seen(content_calls) == [
        ("api", "GET", "/repos/acme/shop/contents/.github/milestones.yml", {"ref": ["release/2.0"]}),
        ("api", "GET", "/repos/acme/shop/contents/README.md", {}),
        ("api", "GET", "/repos/acme/shop/contents/README.md", {"ref": ["main"]}),
        ("api", "GET", "/repos/acme/shop/contents/.github/milestones.yml", {}),
    ]
    # Base64 wrapped every 60 characters, as GitHub sends it.
    raw = httpx.get(f"{fake.url}/repos/acme/shop/contents/.github/milestones.yml", params={"ref": "release/2.0"})
    lines = raw.json()["content"].split("\n")
    assert raw.json()["content"].endswith("\n") and lines[-1] == ""
    assert {len(line) for line in lines[:-2]} == {60} and 0 < len(lines[-2]) <= 60
    assert base64.b64decode(raw.json()["content"]) == policy
    assert httpx.get(raw.json()["download_url"]).content == policy


def test_workflow_runs_and_artifacts(fake: FakeGitHub, shop: FakeRepo) -> None:
    add_ci(shop)
    junit = make_zip({"junit.xml": b"<testsuite/>"})
    shop.add_artifact(502, 9001, "junit-smoke", junit)
    shop.add_artifact(502, 9002, "coverage", b"PK\x05\x06" + bytes(18), expired=True)
    shop.add_artifact(501, 9003, "junit-smoke", junit)

    repo = client(fake).get_repo("acme/shop")
    workflow = repo.get_workflow("ci.yml")
    completed = list(workflow.get_runs(status="completed"))
    on_main = list(workflow.get_runs(branch="main", status="completed"))
    failed = list(workflow.get_runs(status="failure"))
    run = repo.get_workflow_run(502)
    artifacts = list(run.get_artifacts())

    assert (workflow.id, workflow.name, workflow.path) == (101, "CI", ".github/workflows/ci.yml")
    assert [r.id for r in completed] == [504, 502, 501]  # newest first; 503 still running, 505 another workflow
    assert [r.id for r in on_main] == [502, 501]
    assert [r.id for r in failed] == [502]
    assert (run.head_sha, run.head_branch, run.run_attempt, run.status, run.conclusion) == (
        "b" * 40,
        "main",
        2,
        "completed",
        "failure",
    )
    assert run.path == ".github/workflows/ci.yml" and run.workflow_id == 101
    assert run.artifacts_url == f"{fake.url}/repos/acme/shop/actions/runs/502/artifacts"
    assert [(a.id, a.name, a.size_in_bytes, a.expired) for a in artifacts] == [
        (9001, "junit-smoke", len(junit), False),
        (9002, "coverage", 22, True),
    ]
    assert artifacts[0].archive_download_url == f"{fake.url}/repos/acme/shop/actions/artifacts/9001/zip"
    assert artifacts[0].workflow_run.head_sha == "b" * 40
    assert seen(fake.requests) == [
        ("api", "GET", "/repos/acme/shop", {}),
        ("api", "GET", "/repos/acme/shop/actions/workflows/ci.yml", {}),
        ("api", "GET", "/repos/acme/shop/actions/workflows/101/runs", {"status": ["completed"]}),
        ("api", "GET", "/repos/acme/shop/actions/workflows/101/runs", {"branch": ["main"], "status": ["completed"]}),
        ("api", "GET", "/repos/acme/shop/actions/workflows/101/runs", {"status": ["failure"]}),
        ("api", "GET", "/repos/acme/shop/actions/runs/502", {}),
        ("api", "GET", "/repos/acme/shop/actions/runs/502/artifacts", {}),
    ]
    # The runs endpoint takes the file name too, and says how many matched.
    by_file = httpx.get(f"{fake.url}/repos/acme/shop/actions/workflows/ci.yml/runs", params={"per_page": 2}).json()
    assert by_file["total_count"] == 4 and [r["id"] for r in by_file["workflow_runs"]] == [504, 503]


def test_app_installation_token_flow(fake: FakeGitHub, shop: FakeRepo) -> None:
    shop.add_milestone(1, "v1")
    key = private_key_pem()
    integration = GithubIntegration(
        auth=Auth.AppAuth(123, key), base_url=fake.url, seconds_between_requests=0, seconds_between_writes=0
    )

    installation_id = integration.get_repo_installation("acme", "shop").id
    gh = integration.get_github_for_installation(42)
    repo = gh.get_repo("acme/shop")
    titles = [m.title for m in repo.get_milestones()]

    assert installation_id == 42
    assert titles == ["v1"]
    assert fake.tokens_issued == 1
    assert seen(fake.requests) == [
        ("api", "GET", "/repos/acme/shop/installation", {}),
        ("api", "POST", "/app/installations/42/access_tokens", {}),
        ("api", "GET", "/repos/acme/shop", {}),
        ("api", "GET", "/repos/acme/shop/milestones", {}),
    ]
    lookup, mint, get_repo, get_milestones = fake.requests
    # The app authenticates with a JWT signed by its key; the installation with the token.
    public_key = serialization.load_pem_private_key(key.encode(), None).public_key()
    for request in (lookup, mint):
        scheme, _, token = request.headers["authorization"].partition(" ")
        assert scheme == "Bearer"
        assert jwt.decode(token, public_key, algorithms=["RS256"])["iss"] == "123"
    assert mint.json() == {"permissions": {}}
    assert get_repo.headers["authorization"] == get_milestones.headers["authorization"] == "token ghs_1"
    assert [claims["iss"] for claims in fake.jwt_claims] == ["123", "123"]


def test_short_lived_installation_tokens_are_minted_again(fake: FakeGitHub, shop: FakeRepo) -> None:
    # PyGithub renews a token within 20 seconds of its expiry, so 5 seconds means every call.
    fake.token_lifetime = timedelta(seconds=5)
    fake.require_token = True
    integration = GithubIntegration(
        auth=Auth.AppAuth(123, private_key_pem()),
        base_url=fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    gh = integration.get_github_for_installation(42)

    gh.get_repo("acme/shop")
    gh.get_repo("acme/shop")

    assert fake.tokens_issued == 2
    assert [r.authorization for r in fake.calls("GET", "/repos/acme/shop")] == ["token ghs_1", "token ghs_2"]
    with pytest.raises(BadCredentialsException):
        client(fake).get_repo("acme/shop")  # an unknown token, now that tokens are checked
    fake.accepted_tokens.add(TOKEN)
    assert client(fake).get_repo("acme/shop").full_name == "acme/shop"


def test_artifact_download_follows_redirect_without_the_token(fake: FakeGitHub, shop: FakeRepo) -> None:
    add_ci(shop)
    archive = make_zip({"reports/junit.xml": b"<testsuite name='smoke'/>" * 100})
    shop.add_artifact(502, 9001, "junit-smoke", archive)
    url = f"{fake.url}/repos/acme/shop/actions/artifacts/9001/zip"

    with httpx.Client(follow_redirects=True) as http:
        response = http.get(url, headers={"Authorization": "Bearer ghs_1"})

    assert response.status_code == 200
    assert response.content == archive
    assert response.headers["content-type"] == "application/zip"
    assert [r.status_code for r in response.history] == [302]
    assert response.history[0].headers["location"].startswith(f"{fake.storage_url}/blobs/9001?sig=")
    assert seen(fake.requests) == [
        ("api", "GET", "/repos/acme/shop/actions/artifacts/9001/zip", {}),
        ("storage", "GET", "/blobs/9001", {"sig": [response.url.params["sig"]]}),
    ]
    api_request, storage_request = fake.requests
    assert api_request.headers["authorization"] == "Bearer ghs_1"
    assert "authorization" not in storage_request.headers
    assert fake.storage_saw_authorization is False
    assert fake.calls("GET", "/blobs/9001", server="storage") == [storage_request]


async def test_artifact_download_streams_with_async_httpx(fake: FakeGitHub, shop: FakeRepo) -> None:
    add_ci(shop)
    archive = make_zip({f"junit-{n}.xml": bytes(range(256)) * 40 for n in range(5)})
    shop.add_artifact(501, 9003, "junit-all", archive)

    received = bytearray()
    async with httpx.AsyncClient() as http:
        async with http.stream(
            "GET",
            f"{fake.url}/repos/acme/shop/actions/artifacts/9003/zip",
            headers={"Authorization": "token ghs_7"},
            follow_redirects=True,
        ) as response:
            async for chunk in response.aiter_bytes():
                received += chunk

    assert response.status_code == 200 and bytes(received) == archive
    assert [(r.server, r.authorization) for r in fake.requests] == [("api", "token ghs_7"), ("storage", None)]


def test_artifact_download_refusals(fake: FakeGitHub, shop: FakeRepo) -> None:
    add_ci(shop)
    shop.add_artifact(502, 9001, "junit-smoke", make_zip({"a.xml": b"<testsuite/>"}))
    shop.add_artifact(502, 9002, "old", make_zip({"a.xml": b"<testsuite/>"}), expired=True)
    base = f"{fake.url}/repos/acme/shop/actions/artifacts"
    auth = {"Authorization": "Bearer ghs_1"}

    expired = httpx.get(f"{base}/9002/zip", headers=auth)
    unknown = httpx.get(f"{base}/9999/zip", headers=auth)
    anonymous = httpx.get(f"{base}/9001/zip")
    redirect = httpx.get(f"{base}/9001/zip", headers=auth)  # not followed
    leaked = httpx.get(redirect.headers["location"], headers=auth)
    forged = httpx.get(f"{fake.storage_url}/blobs/9001", params={"sig": "0" * 32})

    assert (expired.status_code, expired.json()["message"]) == (410, "Artifact has expired")
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Not Found")
    assert anonymous.status_code == 401
    assert redirect.status_code == 302
    assert leaked.status_code == 400 and fake.storage_saw_authorization is True
    assert forged.status_code == 403
    assert [(r.server, r.path) for r in fake.requests] == [
        ("api", "/repos/acme/shop/actions/artifacts/9002/zip"),
        ("api", "/repos/acme/shop/actions/artifacts/9999/zip"),
        ("api", "/repos/acme/shop/actions/artifacts/9001/zip"),
        ("api", "/repos/acme/shop/actions/artifacts/9001/zip"),
        ("storage", "/blobs/9001"),
        ("storage", "/blobs/9001"),
    ]


def test_fail_next_then_recover(fake: FakeGitHub, shop: FakeRepo) -> None:
    fake.fail_next("GET", "/repos/acme/shop", status=502, times=2)
    fake.fail_next("GET", "/blobs/", status=503, server="storage")
    gh = client(fake)

    statuses = []
    for _ in range(2):
        with pytest.raises(GithubException) as failure:
            gh.get_repo("acme/shop")
        statuses.append(failure.value.status)
    repo = gh.get_repo("acme/shop")

    assert statuses == [502, 502]
    assert repo.full_name == "acme/shop"
    assert len(fake.calls("GET", "/repos/acme/shop")) == 3
    assert httpx.get(f"{fake.storage_url}/blobs/1").status_code == 503
    assert httpx.get(f"{fake.storage_url}/blobs/1").status_code == 403  # the failure was used up


def test_rate_limit_headers_and_exhaustion(fake: FakeGitHub, shop: FakeRepo) -> None:
    fake.rate_remaining = 2
    gh = client(fake)

    gh.get_repo("acme/shop")
    assert gh.rate_limiting == (1, 5000)
    response = httpx.get(f"{fake.url}/repos/acme/shop")
    with pytest.raises(RateLimitExceededException) as exceeded:
        gh.get_repo("acme/shop")

    assert response.status_code == 200
    assert {name: response.headers[name] for name in response.headers if name.startswith("x-ratelimit")} == {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": str(fake.rate_reset),
        "x-ratelimit-used": "5000",
        "x-ratelimit-resource": "core",
    }
    assert exceeded.value.status == 403
    assert fake.rate_remaining == 0
    fake.rate_remaining = 10  # the window resets
    assert gh.get_repo("acme/shop").name == "shop" and fake.rate_remaining == 9


def test_unknown_routes_and_repositories(fake: FakeGitHub, shop: FakeRepo) -> None:
    nowhere = httpx.get(f"{fake.url}/not/a/route")
    wrong_method = httpx.delete(f"{fake.url}/repos/acme/shop")
    with pytest.raises(UnknownObjectException):
        client(fake).get_repo("acme/unknown")
    with pytest.raises(UnknownObjectException):
        GithubIntegration(auth=Auth.AppAuth(1, private_key_pem()), base_url=fake.url).get_repo_installation(
            "acme", "unknown"
        )

    assert (nowhere.status_code, nowhere.json()["message"]) == (404, "Not Found")
    assert wrong_method.status_code == 404
    assert httpx.get(f"{fake.url}/repos/ACME/Shop").json()["full_name"] == "acme/shop"  # names ignore case
    assert fake.errors == []


def test_concurrent_requests_are_all_counted(fake: FakeGitHub, shop: FakeRepo) -> None:
    for number in range(1, 11):
        shop.add_issue(number)

    def fetch() -> None:
        with httpx.Client() as http:
            for _ in range(10):
                assert len(http.get(f"{fake.url}/repos/acme/shop/issues").json()) == 10

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake.calls("GET", "/repos/acme/shop/issues")) == 80
    assert fake.rate_remaining == 5000 - 80


def note(line: int, level: str = "warning") -> dict[str, str | int]:
    return {
        "path": "src/shop.py",
        "start_line": line,
        "end_line": line,
        "annotation_level": level,
        "message": f"line {line}",
    }


def test_check_runs_by_the_app_append_annotations(fake: FakeGitHub, shop: FakeRepo) -> None:
    head = "f" * 40
    shop.add_pull(12, head, head_ref="feature/gate")
    repo = app_client(fake).get_repo("acme/shop")

    created = repo.create_check_run(
        "milestone-gate",
        head,
        status="in_progress",
        external_id="plan-7",
        details_url="https://gate.example/plans/7",
        output={"title": "v2.0 gate", "summary": "Evaluating", "annotations": [note(n) for n in range(1, 51)]},
        actions=[{"label": "Evaluate again", "description": "Re-run the milestone gate", "identifier": "rerun"}],
    )
    run = repo.get_check_run(created.id)
    run.edit(
        conclusion="failure",
        output={"title": "v2.0 gate", "summary": "2 suites missing", "annotations": [note(51, "failure")]},
    )

    assert (created.name, created.head_sha, created.external_id) == ("milestone-gate", head, "plan-7")
    assert (created.status, created.conclusion, created.completed_at) == ("in_progress", None, None)
    assert created.details_url == "https://gate.example/plans/7"
    assert created.html_url == f"https://github.com/acme/shop/runs/{created.id}"
    assert (created.app.id, created.app.slug) == (fake.app_id, "milestone-gate")
    assert created.output.annotations_count == 50 and created.output.title == "v2.0 gate"
    assert [p.number for p in created.pull_requests] == [12]
    assert (run.status, run.conclusion, run.name) == ("completed", "failure", "milestone-gate")
    assert run.completed_at is not None and run.started_at == created.started_at
    assert (run.output.summary, run.output.annotations_count) == ("2 suites missing", 51)
    stored = shop.check_run(created.id)
    assert stored["annotations"] == [note(n) for n in range(1, 51)] + [note(51, "failure")]  # appended, not replaced
    assert stored["actions"][0]["identifier"] == "rerun"
    assert [a.message for a in run.get_annotations()] == [f"line {n}" for n in range(1, 52)]
    assert shop.check_runs_for(head) == [stored] and shop.check_runs_for(head, name="other") == []
    assert [r.authorization for r in fake.requests if r.path.startswith("/repos/")] == ["token ghs_1"] * 4
    assert fake.calls("PATCH", f"/repos/acme/shop/check-runs/{created.id}")[0].json()["conclusion"] == "failure"

    # A second run of the same name: the commit's list shows the latest unless filter=all.
    again = repo.create_check_run("milestone-gate", head, conclusion="success")
    repo.create_check_run("other-check", head)
    commit = repo.get_commit(head)
    latest = commit.get_check_runs(check_name="milestone-gate")
    every = commit.get_check_runs(filter="all")

    assert (again.status, again.check_suite.id) == ("completed", created.check_suite.id)  # one suite per commit
    assert [r.id for r in latest] == [again.id] and latest.totalCount == 1
    assert [r.name for r in every] == ["other-check", "milestone-gate", "milestone-gate"]
    assert [r["id"] for r in shop.check_runs_for(head, "milestone-gate")] == [created.id, again.id]
    assert fake.errors == []


def test_check_run_refusals(fake: FakeGitHub, shop: FakeRepo) -> None:
    head = "f" * 40
    other = fake.repo("acme/other", installation_id=42).add_check_run("elsewhere", head)
    repo = app_client(fake).get_repo("acme/shop")
    output = {"title": "Gate", "summary": "ok"}
    run = repo.create_check_run("milestone-gate", head, output={**output, "annotations": [note(1)]})
    fake.require_token = True
    fake.accepted_tokens.add(TOKEN)  # good for reading, but no installation token

    def refused(call: Callable[[], object]) -> GithubException:
        with pytest.raises(GithubException) as refusal:
            call()
        return refusal.value

    plain = refused(lambda: client(fake).get_repo("acme/shop").create_check_run("milestone-gate", head))
    long_summary = refused(lambda: repo.create_check_run("g", head, output={"title": "Gate", "summary": "x" * 65536}))
    too_many = refused(lambda: repo.create_check_run("g", head, output={**output, "annotations": [note(1)] * 51}))
    long_label = refused(
        lambda: repo.create_check_run("g", head, actions=[{"label": "L" * 21, "description": "d", "identifier": "i"}])
    )
    no_title = refused(lambda: repo.create_check_run("g", head, output={"summary": "ok"}))
    bad_conclusion = refused(lambda: repo.create_check_run("g", head, conclusion="passed"))
    no_conclusion = refused(lambda: repo.create_check_run("g", head, status="completed"))
    bad_note = refused(lambda: repo.create_check_run("g", head, output={**output, "annotations": [{"path": "a"}]}))
    emoji_bytes = refused(lambda: repo.create_check_run("g", head, output={"title": "Gate", "summary": "🙂" * 20000}))
    more_notes = refused(lambda: run.edit(output={**output, "annotations": [note(2)] * 51}))
    unknown = refused(lambda: repo.get_check_run(999999).edit(status="in_progress"))
    elsewhere = refused(lambda: repo.get_check_run(other["id"]).edit(status="in_progress"))

    assert (plain.status, plain.data["message"]) == (403, "You must authenticate via a GitHub App.")
    assert long_summary.status == 422
    assert long_summary.data["message"] == "Invalid request.\n\nOnly 65535 characters are allowed; 65536 were supplied."
    assert long_summary.data["errors"] == ["Only 65535 characters are allowed; 65536 were supplied."]
    assert (too_many.status, too_many.data["errors"]) == (422, ["No more than 50 items are allowed; 51 were supplied."])
    assert long_label.status == 422
    assert long_label.data["errors"] == ["Only 20 characters are allowed; 21 were supplied."]
    assert (no_title.status, no_title.data["errors"]) == (422, ['"title" wasn\'t supplied.'])
    assert bad_conclusion.status == 422 and "is not one of" in bad_conclusion.data["errors"][0]
    assert (no_conclusion.status, no_conclusion.data["errors"]) == (422, ['"conclusion" wasn\'t supplied.'])
    assert bad_note.status == 422 and len(bad_note.data["errors"]) == 4  # start_line, end_line, level, message
    assert (emoji_bytes.status, emoji_bytes.data["message"]) == (422, "Validation Failed")
    assert emoji_bytes.data["errors"][0]["message"] == "summary exceeds a maximum bytesize of 65535"
    assert more_notes.status == 422 and shop.check_run(run.id)["annotations"] == [note(1)]
    assert unknown.status == elsewhere.status == 404
    assert [r["id"] for r in shop.check_runs] == [run.id]  # nothing refused was stored
    assert (
        httpx.get(
            f"{fake.url}/repos/acme/shop/check-runs/{other['id']}", headers={"Authorization": f"token {TOKEN}"}
        ).status_code
        == 404
    )


def test_commit_statuses_and_combined_state(fake: FakeGitHub, shop: FakeRepo) -> None:
    head = "a" * 40
    commit = client(fake, lazy=True).get_repo("acme/shop").get_commit(head)

    before = commit.get_combined_status()
    commit.create_status("pending", "https://gate.example/7", "Evaluating", "milestone-gate/v2.0")
    commit.create_status("success", context="ci/smoke")
    done = commit.create_status("success", description="All suites passed", context="milestone-gate/v2.0")
    bare = client(fake, lazy=True).get_repo("acme/shop").get_commit("b" * 40).create_status("success")
    statuses = list(commit.get_statuses())
    combined = commit.get_combined_status()
    app_commit = app_client(fake).get_repo("acme/shop").get_commit(head)
    by_app = app_commit.create_status("error", description="Gate crashed", context="ci/smoke")
    failing = app_commit.get_combined_status()
    with pytest.raises(GithubException) as too_long:
        commit.create_status("failure", description="d" * 141)
    with pytest.raises(GithubException) as bad_state:
        commit.create_status("passed")

    assert (before.state, before.total_count, before.statuses) == ("pending", 0, [])  # none yet: pending
    assert (done.state, done.description, done.context, done.creator.login) == (
        "success",
        "All suites passed",
        "milestone-gate/v2.0",
        "octocat",
    )
    assert done.url == f"{fake.url}/repos/acme/shop/statuses/{head}"
    assert bare.context == "default"
    assert [(s.state, s.context) for s in statuses] == [  # newest first
        ("success", "milestone-gate/v2.0"),
        ("success", "ci/smoke"),
        ("pending", "milestone-gate/v2.0"),
    ]
    assert (combined.state, combined.total_count, combined.sha) == ("success", 2, head)
    assert [s.id for s in combined.statuses] == [statuses[0].id, statuses[1].id]  # the latest per context
    assert (by_app.creator.login, by_app.creator.type) == ("milestone-gate[bot]", "Bot")
    assert (failing.state, [s.state for s in failing.statuses]) == ("failure", ["error", "success"])
    assert too_long.value.status == 422 and too_long.value.data["errors"] == [
        {
            "resource": "Status",
            "code": "custom",
            "field": "description",
            "message": "description is too long (maximum is 140 characters)",
        }
    ]
    assert bad_state.value.status == 422 and bad_state.value.data["message"].startswith("Invalid request.")
    assert [s["sha"] for s in shop.statuses] == [head, head, head, "b" * 40, head]
    listed = httpx.get(f"{fake.url}/repos/acme/shop/commits/{head}/statuses", params={"per_page": 2})
    assert [s["description"] for s in listed.json()] == ["Gate crashed", "All suites passed"]
    assert "sha" not in listed.json()[0] and 'rel="next"' in listed.headers["link"]


def test_pull_request_and_its_files(fake: FakeGitHub, shop: FakeRepo) -> None:
    head = "c" * 40
    shop.add_milestone(7, "v2.0")
    shop.files[("src/app.py", head)] = b"print('shop')\n"
    shop.add_pull(
        12,
        head,
        head_ref="feature/gate",
        title="Gate the release",
        milestone=7,
        files=[
            *(f"src/module_{n}.py" for n in range(40)),
            {"filename": "docs/new.md", "status": "added"},
            {"filename": "lib/new.py", "status": "renamed", "previous_filename": "lib/old.py"},
            {"filename": "old.txt", "status": "removed"},
            "src/app.py",
        ],
    )
    shop.add_pull(13, "d" * 40, state="closed", draft=True)
    shop.add_pull(14, head, base="release/2.0")
    shop.add_pull(20, "e" * 40, files=[f"gen/{n}.txt" for n in range(3001)])
    repo = client(fake, lazy=True).get_repo("acme/shop")

    pull = repo.get_pull(12)
    files = list(pull.get_files())
    pulls = list(repo.get_commit(head).get_pulls())

    assert (pull.number, pull.title, pull.state) == (12, "Gate the release", "open")
    assert (pull.draft, pull.merged, pull.mergeable_state) == (False, False, "clean")
    assert (pull.head.sha, pull.head.ref, pull.head.repo.full_name) == (head, "feature/gate", "acme/shop")
    assert (pull.base.ref, pull.milestone.number, pull.milestone.title) == ("main", 7, "v2.0")
    assert pull.html_url == "https://github.com/acme/shop/pull/12"
    assert (pull.changed_files, pull.additions, pull.deletions) == (44, 42, 42)
    assert len(files) == 44 and files[0].filename == "src/module_0.py"
    added, renamed, removed, app = files[40:]
    assert (added.status, added.additions, added.deletions, added.changes) == ("added", 1, 0, 1)
    assert (renamed.status, renamed.previous_filename, renamed.patch) == ("renamed", "lib/old.py", None)
    assert (removed.status, removed.deletions) == ("removed", 1)
    assert (app.status, app.sha) == ("modified", hashlib.sha1(b"blob 14\0print('shop')\n").hexdigest())
    assert app.blob_url == f"https://github.com/acme/shop/blob/{head}/src/app.py"
    assert app.contents_url == f"{fake.url}/repos/acme/shop/contents/src/app.py?ref={head}"
    assert [r.query for r in fake.calls("GET", "/repos/acme/shop/pulls/12/files")] == [{}, {"page": ["2"]}]
    assert [p.number for p in pulls] == [12, 14]
    assert "files" not in pull.raw_data and len(shop.pull(12)["files"]) == 44
    # Lists carry the simple pull request; and GitHub lists at most 3000 files of one.
    simple = httpx.get(f"{fake.url}/repos/acme/shop/commits/{head}/pulls").json()[0]
    assert "changed_files" not in simple and "files" not in simple and simple["head"]["sha"] == head
    big = f"{fake.url}/repos/acme/shop/pulls/20"
    assert httpx.get(big).json()["changed_files"] == 3001
    assert len(httpx.get(f"{big}/files", params={"per_page": 100, "page": 30}).json()) == 100
    assert httpx.get(f"{big}/files", params={"per_page": 100, "page": 31}).json() == []
    assert len(httpx.get(f"{big}/files", params={"per_page": 500}).json()) == 100
    assert httpx.get(f"{fake.url}/repos/acme/shop/pulls/99").status_code == 404
    assert fake.errors == []


def test_contents_at_a_commit_sha(fake: FakeGitHub, shop: FakeRepo) -> None:
    sha = hashlib.sha1(b"a commit").hexdigest()
    shop.files[(".github/milestones.yml", sha)] = b"plans: []\n"

    repo = client(fake).get_repo("acme/shop")
    at_sha = repo.get_contents(".github/milestones.yml", ref=sha)
    with pytest.raises(UnknownObjectException):
        repo.get_contents(".github/milestones.yml")  # only at that commit, not on the default branch

    assert at_sha.decoded_content == b"plans: []\n"
    assert at_sha.html_url == f"https://github.com/acme/shop/blob/{sha}/.github/milestones.yml"
    assert fake.calls("GET", "/repos/acme/shop/contents/.github/milestones.yml")[0].query == {"ref": [sha]}
    assert httpx.get(at_sha.download_url).content == b"plans: []\n"


def test_creating_a_milestone_checks_the_body_and_refuses_a_title_in_use(fake: FakeGitHub, shop: FakeRepo) -> None:
    repo = client(fake).get_repo("acme/shop")
    before = len(shop.milestones)
    created = repo.create_milestone("v9.0", description="next", due_on=datetime(2027, 1, 5, tzinfo=UTC).date())
    assert (created.title, created.state, created.description) == ("v9.0", "open", "next")
    assert created.due_on == datetime(2027, 1, 5, tzinfo=UTC)
    assert len(shop.milestones) == before + 1
    with pytest.raises(GithubException) as taken:
        repo.create_milestone("v9.0")
    assert taken.value.status == 422
    assert taken.value.data["errors"] == [{"resource": "Milestone", "code": "already_exists", "field": "title"}]
    answer = httpx.post(
        f"{fake.url}/repos/acme/shop/milestones",
        json={"description": "no title", "state": "done"},
        headers={"Authorization": "token test"},
    )
    assert answer.status_code == 422
    assert answer.json()["errors"] == [
        '"title" wasn\'t supplied.',
        """For 'properties/state', "done" is not one of ["open", "closed"].""",
    ]
