"""Handlers and backfill that read GitHub, against a loopback fake of its REST API."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from datetime import timedelta

import pytest

from core import outbox, services
from core.enums import DeliveryStatus
from core.junit import parse_reports
from core.models import Defect, Delivery, Launch, Milestone, PullRequest, Repository, Snapshot, TestResult
from integrations.github.backfill import backfill
from integrations.github.events import handler_context
from tests.conftest import JUNIT
from tests.fake_github import FakeGitHub
from tests.github import fixture, github_access, make_zip, private_key_pem, running_app, settings_for

RUN_REPO = "octo-org/octo-repo"  # the repository of the real workflow_run payloads
RUN_ID = 289782451
POLICY = b"""
plans:
  tests: {workflow: test.yml, artifacts: "junit-*"}
milestones:
  "v1.0": {plans: [tests], required: ["plan:tests"]}
"""
REPORTS = ["python-xunit-pytest.xml", "jest-junit.xml", "external_java_junit4-basic.xml"]


def junit_zip() -> bytes:
    entries = {f"reports/{name}": (JUNIT / name).read_bytes() for name in REPORTS}
    entries["coverage.xml"] = b'<?xml version="1.0"?><coverage line-rate="0.9"/>'
    return make_zip(entries)


@pytest.fixture
def fake():
    with FakeGitHub() as running:
        yield running


def run_repo(fake: FakeGitHub, zip_bytes: bytes | None = None, name: str = "junit-linux", **run):
    repo = fake.repo(RUN_REPO, default_branch="master")
    if not repo.workflows:
        repo.add_workflow(161335, "CI", ".github/workflows/test.yml")
    repo.add_run(run.pop("run_id", RUN_ID), 161335, "3484a3fb816e0859fd6e1cea078d76385ff50625", "master", **run)
    if zip_bytes is not None:
        repo.add_artifact(RUN_ID, 7001, name, zip_bytes)
    return repo


@pytest.fixture
async def hooks(db, fake):
    settings = settings_for(db, github_token="ghp_test", github_api_url=fake.url, webhook_retry_seconds=0.01)
    await services.apply_policy_file(RUN_REPO, POLICY)
    async with running_app(settings) as running:
        yield running


def completed_run(attempt: int = 1) -> dict:
    payload = fixture("workflow_run", "completed")
    payload["workflow_run"]["run_attempt"] = attempt
    return payload


async def test_a_finished_run_becomes_a_launch_from_its_artifact(hooks, fake):
    run_repo(fake, junit_zip())
    delivery = await hooks.deliver("workflow_run", completed_run(), "guid-run")
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    expected = parse_reports([JUNIT / name for name in REPORTS]).counts()
    launch = await Launch.get(source_id=f"run:{RUN_ID}")
    assert (launch.attempt, launch.commit_sha, launch.branch) == (
        1,
        "3484a3fb816e0859fd6e1cea078d76385ff50625",
        "master",
    )
    assert (launch.tests, launch.passed, launch.failed, launch.errors, launch.skipped, launch.files) == (
        expected["tests"],
        expected["passed"],
        expected["failed"],
        expected["errors"],
        expected["skipped"],
        3,
    )
    assert launch.warnings == ["junit-linux/coverage.xml: skipped, not a JUnit report"]
    assert await TestResult.filter(launch=launch).count() == expected["tests"]
    paths = [(r.method, r.path) for r in fake.requests]
    assert paths == [
        ("GET", f"/repos/{RUN_REPO}/actions/runs/{RUN_ID}"),
        ("GET", f"/repos/{RUN_REPO}/actions/runs/{RUN_ID}/artifacts"),
        ("GET", f"/repos/{RUN_REPO}/actions/artifacts/7001/zip"),
        ("GET", "/blobs/7001"),
    ]
    assert fake.requests[2].authorization == "Bearer ghp_test"
    assert not fake.storage_saw_authorization
    verdict = await services.get_verdict(RUN_REPO, "v1.0")
    assert verdict.metrics.pass_rate == pytest.approx(
        expected["passed"] / (expected["tests"] - expected["skipped"]), abs=0.01
    )


async def test_the_same_run_delivered_twice_is_one_launch_and_a_rerun_replaces_it(hooks, fake):
    run_repo(fake, junit_zip())
    await hooks.deliver("workflow_run", completed_run(), "first")
    again = await hooks.deliver("workflow_run", completed_run(), "second")  # a new GUID for the same run
    assert "already recorded" in again.note
    await hooks.deliver("workflow_run", completed_run(attempt=2), "rerun")
    launches = await Launch.filter(source_id=f"run:{RUN_ID}").order_by("attempt")
    assert [(launch.attempt, launch.superseded) for launch in launches] == [(1, True), (2, False)]


async def test_an_artifact_two_plans_read_is_downloaded_once(hooks, fake):
    await services.apply_policy_file(
        RUN_REPO, POLICY.replace(b"plans:\n", b"plans:\n  everything: {workflow: test.yml}\n", 1)
    )
    run_repo(fake, junit_zip())
    delivery = await hooks.deliver("workflow_run", completed_run())
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    tests = parse_reports([JUNIT / name for name in REPORTS]).counts()["tests"]
    launches = await Launch.filter(source_id=f"run:{RUN_ID}").prefetch_related("plan")
    assert sorted((launch.plan.name, launch.tests) for launch in launches) == [("everything", tests), ("tests", tests)]
    assert len(fake.calls("GET", f"/repos/{RUN_REPO}/actions/artifacts/7001/zip")) == 1


async def test_a_run_without_a_matching_artifact_is_recorded_with_a_warning(hooks, fake):
    run_repo(fake, make_zip({"app.bin": b"\0"}), name="build-output")
    delivery = await hooks.deliver("workflow_run", completed_run())
    assert delivery.status is DeliveryStatus.DONE
    assert delivery.note == f"run {RUN_ID} attempt 1: plan tests: 0 tests, 0 failing (1 warnings)"
    launch = await Launch.get(source_id=f"run:{RUN_ID}")
    assert launch.tests == 0
    assert launch.warnings == ["no artifact matches 'junit-*' (artifacts: build-output); recorded with no results"]


@pytest.mark.parametrize(
    "entries, reason",
    [
        ({"../../etc/cron.d/evil.xml": b"<testsuite/>"}, "escapes the archive"),
        ({"bomb.xml": b"<" + b"\0" * (30 * 1024 * 1024)}, "zip bomb"),
        ({"reports/broken.xml": b"<testsuite><testcase name='a'>"}, "malformed XML"),
    ],
)
async def test_a_hostile_or_broken_artifact_fails_the_delivery_at_once(hooks, fake, entries, reason):
    run_repo(fake, make_zip(entries))
    delivery = await hooks.deliver("workflow_run", completed_run())
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert reason in delivery.error
    assert not await Launch.exists()


async def test_a_github_outage_is_retried_then_succeeds(hooks, fake):
    run_repo(fake, junit_zip())
    fake.fail_next("GET", f"/repos/{RUN_REPO}/actions/runs/{RUN_ID}/artifacts", status=502)
    # Long enough that a slow machine's drain does not reach the retry before it looks.
    hooks.worker.backoff = dataclasses.replace(hooks.worker.backoff, first_delay=timedelta(seconds=0.5), jitter=0)
    await hooks.send("workflow_run", completed_run(), "guid-retry")
    await hooks.worker.drain()
    waiting = await Delivery.get(guid="guid-retry")
    assert (waiting.status, waiting.attempts) == (DeliveryStatus.PENDING, 1)
    assert "502" in waiting.error
    await asyncio.sleep(0.55)
    await hooks.worker.drain()
    done = await Delivery.get(guid="guid-retry")
    assert (done.status, done.attempts) == (DeliveryStatus.DONE, 2)
    assert await Launch.filter(source_id=f"run:{RUN_ID}").count() == 1


async def test_a_workflow_that_feeds_no_plan_is_ignored(hooks, fake):
    payload = completed_run()
    payload["workflow_run"]["path"] = ".github/workflows/lint.yml"
    payload["workflow_run"]["name"] = "Lint"
    delivery = await hooks.deliver("workflow_run", payload)
    assert (delivery.status, delivery.note) == (DeliveryStatus.IGNORED, "workflow Lint feeds no test plan")
    assert fake.requests == []


def push_payload(
    repository: str, *, ref: str = "refs/heads/main", touched: str = ".github/milestones.yml", after: str = "a" * 40
) -> dict:
    owner, name = repository.split("/")
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": after,
        "created": False,
        "deleted": False,
        "forced": False,
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}, "default_branch": "main"},
        "commits": [{"id": after, "added": [], "modified": [touched], "removed": []}],
        "head_commit": {"id": after, "added": [], "modified": [touched], "removed": []},
    }


async def test_a_push_changing_the_policy_applies_it_and_an_invalid_one_keeps_the_last_valid(hooks, fake):
    repo = fake.repo("acme/shop", default_branch="main")
    repo.files[(".github/milestones.yml", None)] = b'milestones:\n  "v9": {pass_rate: 0.9}\n'
    delivery = await hooks.deliver("push", push_payload("acme/shop"))
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    assert delivery.note == ".github/milestones.yml@main: applied to 1 milestones"
    assert await Milestone.filter(name="v9").exists()
    assert fake.calls("GET", "/repos/acme/shop/contents/.github/milestones.yml")[0].query == {"ref": ["main"]}

    repo.files[(".github/milestones.yml", None)] = b'milestones:\n  "v9":\n    pass_rate: 7\n'
    delivery = await hooks.deliver("push", push_payload("acme/shop", after="b" * 40))
    assert delivery.note == ".github/milestones.yml@main: invalid (1 errors), the last valid policy stays"
    stored = await Repository.get(full_name="acme/shop")
    assert "pass_rate: 0.9" in stored.policy_text
    [error] = stored.policy_errors
    assert (error["line"], error["path"]) == (3, "milestones.v9.pass_rate")


async def test_a_late_push_never_brings_back_an_older_policy(hooks, fake):
    repo = fake.repo("acme/shop", default_branch="main")
    repo.files[(".github/milestones.yml", None)] = b'milestones:\n  "v10": {}\n'
    # The push that made v9 is processed after the one that made v10 (a retry, say).
    delivery = await hooks.deliver("push", push_payload("acme/shop", after="9" * 40))
    assert delivery.status is DeliveryStatus.DONE
    assert "v10" in (await Repository.get(full_name="acme/shop")).policy_text


async def test_a_run_of_a_fork_branch_is_ignored(hooks, fake):
    payload = completed_run()
    payload["workflow_run"]["head_repository"] = {"full_name": "mallory/octo-repo"}
    delivery = await hooks.deliver("workflow_run", payload)
    assert (delivery.status, delivery.note) == (
        DeliveryStatus.IGNORED,
        f"run {RUN_ID} is of mallory/octo-repo:master, a fork",
    )
    assert fake.requests == [] and not await Launch.exists()


async def test_pushes_elsewhere_or_not_touching_the_policy_are_ignored(hooks, fake):
    other_branch = await hooks.deliver("push", push_payload("acme/shop", ref="refs/heads/feature"))
    assert other_branch.status is DeliveryStatus.IGNORED
    other_file = await hooks.deliver("push", push_payload("acme/shop", touched="README.md"))
    assert other_file.note == "push does not change .github/milestones.yml"
    assert fake.requests == []


async def test_as_a_github_app_the_installation_token_is_fetched_once_and_used(db, fake):
    await services.apply_policy_file(RUN_REPO, POLICY)
    repo = run_repo(fake, junit_zip())
    repo.installation_id = 42
    settings = settings_for(
        db, github_app_id=1, github_private_key=private_key_pem().replace("\n", "\\n"), github_api_url=fake.url
    )
    async with running_app(settings) as hooks:
        for attempt in (1, 2):
            payload = completed_run(attempt)
            payload["installation"] = {"id": 42}
            delivery = await hooks.deliver("workflow_run", payload)
            assert delivery.status is DeliveryStatus.DONE, delivery.error
    assert fake.tokens_issued == 1
    [token] = fake.issued_tokens
    downloads = fake.calls("GET", f"/repos/{RUN_REPO}/actions/artifacts/7001/zip")
    assert [request.authorization for request in downloads] == [f"Bearer {token}"] * 2
    assert fake.calls("POST", "/app/installations/42/access_tokens")[0].authorization.startswith("Bearer ey")


async def test_a_low_rate_limit_is_logged_once(hooks, fake, caplog):
    caplog.set_level(logging.WARNING, logger="integrations.github.api")
    run_repo(fake, junit_zip())
    fake.rate_remaining = 120
    await hooks.deliver("workflow_run", completed_run(1))
    await hooks.deliver("workflow_run", completed_run(2))
    [line] = [record.getMessage() for record in caplog.records if record.name == "integrations.github.api"]
    assert line.startswith("GitHub rate limit low: 118 of 5000 requests left")


def shop_on_github(fake: FakeGitHub):
    repo = fake.repo("acme/shop", default_branch="main", installation_id=None)
    repo.files[(".github/milestones.yml", None)] = b"""
plans:
  smoke: {workflow: ci.yml, artifacts: "junit-*"}
milestones:
  "v2.0": {plans: [smoke], required: ["plan:smoke"]}
"""
    repo.add_milestone(3, "v2.0", due_on="2026-12-15T08:00:00Z")
    repo.add_milestone(4, "v2.1", state="closed")
    for number in range(1, 76):
        repo.add_issue(
            number,
            f"bug {number}",
            labels=["bug", "P2" if number % 2 else "P3"],
            milestone=3,
            updated_at=f"2026-11-{1 + number % 20:02}T10:00:00Z",
        )
    repo.add_issue(76, "a feature", labels=["enhancement"], milestone=3)
    repo.add_issue(77, "a fix", labels=["bug"], pull_request=True)
    repo.add_workflow(11, "CI", ".github/workflows/ci.yml")
    repo.add_run(500, 11, "old0", "main", created_at="2026-11-20T10:00:00Z")
    repo.add_run(501, 11, "new1", "main", created_at="2026-11-21T10:00:00Z")
    repo.add_artifact(501, 9001, "junit-results", junit_zip())
    repo.add_pull(12, "a" * 40, base="main", milestone=3)
    repo.add_pull(13, "b" * 40, base="main", state="closed")
    return repo


async def test_sync_pulls_the_present_state_and_running_it_again_changes_nothing(db, fake):
    shop_on_github(fake)
    settings = settings_for(db, github_token="ghp_test", github_api_url=fake.url)
    async with handler_context(settings, github_access(settings)) as context:
        report = await backfill(context, "acme/shop")
        assert (report.milestones, report.issues, report.defects, report.pull_requests) == (2, 75, 75, 1)
        counts = parse_reports([JUNIT / name for name in REPORTS]).counts()
        failing = counts["failed"] + counts["errors"]
        assert report.runs == [f"ci.yml run 501: plan smoke: {counts['tests']} tests, {failing} failing (1 warnings)"]
        assert len(fake.calls("GET", "/repos/acme/shop/issues")) == 3  # 75 issues, 30 a page
        # Listed items are used as listed, never fetched again one by one.
        assert not [r.path for r in fake.requests if re.fullmatch(r"/repos/acme/shop/(issues|milestones)/\d+", r.path)]
        milestone = await Milestone.get(name="v2.0")
        assert str(milestone.target_date) == "2026-12-15" and milestone.github_number == 3
        assert await Defect.filter(counts=True).count() == 75
        launch = await Launch.get(source_id="run:501")
        assert launch.commit_sha == "new1"
        # The open pull request is recorded and due its gate check, which the web process writes.
        pull = await PullRequest.get(number=12).prefetch_related("milestone")
        assert (pull.head_sha, pull.milestone.name) == ("a" * 40, "v2.0")
        assert [item.subject for item in await outbox.pending(outbox.PULL_REQUEST_CHECKS)] == [pull.id]

        before = (
            await Snapshot.all().count(),
            await Launch.all().count(),
            await Defect.all().count(),
            await TestResult.all().count(),
        )
        again = await backfill(context, "acme/shop")
        after = (
            await Snapshot.all().count(),
            await Launch.all().count(),
            await Defect.all().count(),
            await TestResult.all().count(),
        )
        assert after == before
        assert again.policy == ".github/milestones.yml: unchanged"
        assert "already recorded" in again.runs[0]


async def test_sync_fails_clearly_without_credentials(db):
    from integrations.github.api import GitHubUnavailable

    settings = settings_for(db)
    async with handler_context(settings) as context:
        with pytest.raises(GitHubUnavailable, match="GITHUB_TOKEN"):
            await backfill(context, "acme/shop")
