"""The GitHub fake, driven by the real clients the service uses: PyGithub and httpx."""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import datetime, timedelta, timezone
from typing import Iterator

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


def client(fake: FakeGitHub, auth: Auth.Auth | None = None) -> Github:
    return Github(
        auth=auth or Auth.Token(TOKEN),
        base_url=fake.url,
        seconds_between_requests=0,
        seconds_between_writes=0,
        retry=None,
    )


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
    assert v3.due_on == datetime(2024, 3, 4, 7, tzinfo=timezone.utc)
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
