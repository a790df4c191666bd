"""The gate on pull requests, end to end: real webhook payloads into the app, check runs and
statuses out to a loopback fake GitHub, asserted request by request."""

from __future__ import annotations

import copy
import time
from datetime import timedelta
from typing import Any

import pytest

from core import outbox, services
from core.clock import utcnow
from core.enums import Decision, DeliveryStatus, InstallationStatus, MilestoneState
from core.ingest import LaunchSource
from core.installations import record_installation
from core.models import GateCheck, Milestone, Outbox
from core.pull_requests import refresh_open_checks
from tests.fake_github import FakeGitHub, FakeRepo, RecordedRequest
from tests.github import Hooks, fixture, private_key_pem, running_app, settings_for
from tests.test_services import report

REPO = "Codertocat/Hello-World"  # the repository of the real pull_request and issues payloads
HEAD = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"  # pull request #2's head in those payloads
PUBLIC = "https://milestones.example.com"
CHECKS = f"/repos/{REPO}/check-runs"
POLICY = """
plans:
  smoke: {workflow: ci.yml}
milestones:
  "v1.0":
    plans: [smoke]
    required: ["plan:smoke"]
    max_open_defects: {critical: 0, high: 0}
    signoff: {approvers: [U1]}
  "v3.0":
    plans: [smoke]
    branches: [master]
"""


@pytest.fixture
def fake():
    with FakeGitHub() as running:
        repo = running.repo(REPO, default_branch="master", installation_id=1)
        for number, head in ((2, HEAD), (3, "d" * 40), (4, "e" * 40)):
            repo.add_pull(number, head, base="master", files=["README.md"])
        yield running


def app_settings(db: str, fake: FakeGitHub, **more: Any):
    credentials = {"github_app_id": 1, "github_private_key": private_key_pem().replace("\n", "\\n")}
    if "github_token" in more:
        credentials = {}
    values = {"github_api_url": fake.url, "public_url": PUBLIC, "checks_settle_seconds": 0, **credentials, **more}
    return settings_for(db, **values)


@pytest.fixture
async def hooks(db, fake):
    load, _ = await services.apply_policy_file(REPO, POLICY)
    assert load.ok, load.errors
    await services.save_milestone(REPO, "v1.0", github_number=1, target_date=utcnow().date() + timedelta(days=10))
    async with running_app(app_settings(db, fake)) as running:
        yield running


async def settle(hooks: Hooks) -> None:
    """Process every delivery, then publish every pull request that is due."""
    await hooks.worker.drain()
    await hooks.app.state.publisher.drain()


def pull_request(action: str = "opened", *, milestone: bool = True, head: str = HEAD, **changes: Any) -> dict:
    payload = fixture("pull_request", "opened", action=action)
    pull = payload["pull_request"]
    if milestone:
        pull["milestone"] = copy.deepcopy(fixture("issues", "opened")["issue"]["milestone"])
    pull["head"]["sha"] = head
    pull["updated_at"] = utcnow().isoformat()
    pull.update(changes)
    return payload


def issue(number: int, labels: list[str], action: str = "opened", state: str = "open") -> dict:
    payload = fixture("issues", "opened", action=action)
    payload["issue"].update(
        number=number,
        state=state,
        labels=[{"name": label} for label in labels],
        updated_at=utcnow().isoformat(),
        html_url=f"https://github.com/{REPO}/issues/{number}",
        title=f"Checkout fails {number}",
    )
    return payload


async def launch(source: str, *outcomes: str, commit: str = "c0ffee0123456789") -> None:
    cases = [("com.acme.Checkout", f"test_{index}", outcome) for index, outcome in enumerate(outcomes)]
    await services.record_launch(
        report(*cases),
        LaunchSource(
            REPO,
            "smoke",
            source,
            commit_sha=commit,
            url=f"https://github.com/{REPO}/actions/runs/{source}",
            branch="master",
            finished_at=utcnow(),
        ),
    )


def writes(fake: FakeGitHub) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.method in ("POST", "PATCH") and "/access_tokens" not in r.path]


def check_writes(fake: FakeGitHub) -> list[tuple[str, str, str, str]]:
    """(method, path, conclusion, title) of every check run write, oldest first."""
    return [
        (r.method, r.path, r.json()["conclusion"], r.json()["output"]["title"])
        for r in writes(fake)
        if r.path.startswith(CHECKS)
    ]


def the_repo(fake: FakeGitHub) -> FakeRepo:
    return fake.repo(REPO)


async def test_a_pull_request_lifecycle_shows_the_gate_at_each_step(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    [created] = writes(fake)
    assert (created.method, created.path) == ("POST", CHECKS)
    body = created.json()
    assert body["name"] == "Milestone gate: v1.0" and body["head_sha"] == HEAD
    assert (body["status"], body["conclusion"]) == ("completed", "neutral")
    assert body["output"]["title"] == "No data: no test results yet, 0 of 1 approvals"
    assert "| ➖ | Required tests pass | no test results yet |" in body["output"]["summary"]
    assert body["actions"] == [
        {"label": "Re-evaluate", "description": "Compute the milestone gate again", "identifier": "reevaluate"}
    ]
    # The page opens on the section that says what the gate waits for.
    assert body["details_url"] == hooks.app.state.page_links.milestone_url(REPO, "v1.0", "criteria")
    assert body["details_url"].startswith(f"{PUBLIC}/milestones/Codertocat/Hello-World/v1.0?key=")
    assert body["details_url"].endswith("#criteria")
    [run] = the_repo(fake).check_runs_for(HEAD)
    check_run = f"{CHECKS}/{run['id']}"

    await launch("101", "passed", "failed")  # tests fail
    await hooks.deliver("issues", issue(7, ["bug", "P0"]))  # a critical defect is filed
    await settle(hooks)
    await launch("102", "passed", "passed")  # tests fixed
    await settle(hooks)
    await hooks.deliver("issues", issue(7, ["bug", "P0"], action="closed", state="closed"))  # defect closed
    await settle(hooks)
    await services.record_decision(REPO, "v1.0", "U1", Decision.APPROVE)  # sign-off
    await settle(hooks)

    assert check_writes(fake) == [
        ("POST", CHECKS, "neutral", "No data: no test results yet, 0 of 1 approvals"),
        (
            "PATCH",
            check_run,
            "failure",
            "Blocked: 1 required test failing, pass rate 50% (needs 95%), 1 blocking defect, 0 of 1 approvals",
        ),
        ("PATCH", check_run, "failure", "Blocked: 1 blocking defect, 0 of 1 approvals"),
        ("PATCH", check_run, "action_required", "Ready for sign-off: 0 of 1 approvals"),
        ("PATCH", check_run, "success", "Complete: all criteria met"),
    ]
    blocked = writes(fake)[1].json()["output"]
    assert (
        "- `com.acme.Checkout.test_1` failed since [this run](https://github.com/Codertocat/Hello-World/actions/runs/101)"
        in blocked["text"]
    )
    assert (
        f"- [#7](https://github.com/{REPO}/issues/7) Checkout fails 7 · critical, open" in blocked["text"].splitlines()
    )
    assert len(the_repo(fake).check_runs_for(HEAD)) == 1, "edited in place, never piled up"
    assert await Outbox.filter(topic=outbox.PULL_REQUEST_CHECKS).count() == 0


async def test_a_redelivered_event_or_an_unchanged_verdict_writes_nothing(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await hooks.deliver("pull_request", pull_request("opened"))  # GitHub redelivered it, with a new GUID
    await hooks.deliver("pull_request", pull_request("edited", title="A better title"))
    await hooks.deliver("issues", issue(8, ["question"]))  # not a defect: the verdict stays
    await settle(hooks)
    assert [r.method for r in writes(fake)] == ["POST"]


async def test_a_new_head_gets_its_own_check_and_the_old_head_is_left_alone(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await hooks.deliver("pull_request", pull_request("synchronize", head="b" * 40))
    await settle(hooks)
    assert [(r.method, r.path, r.json()["head_sha"]) for r in writes(fake)] == [
        ("POST", CHECKS, HEAD),
        ("POST", CHECKS, "b" * 40),
    ]
    await launch("101", "failed")
    await settle(hooks)
    [edit] = writes(fake)[2:]
    new_run = the_repo(fake).check_runs_for("b" * 40)[0]["id"]
    assert (edit.method, edit.path) == ("PATCH", f"{CHECKS}/{new_run}")


async def test_a_burst_of_changes_is_one_update_per_pull_request(hooks, fake):
    publisher = hooks.app.state.publisher
    publisher.settling = outbox.Settling(quiet=timedelta(seconds=5))
    for number, head in ((2, HEAD), (3, "d" * 40), (4, "e" * 40)):
        await hooks.deliver("pull_request", pull_request("opened", number=number, head=head))
    assert await publisher.drain(now=utcnow()) == 0, "nothing is published before the changes settle"
    await publisher.drain(now=utcnow() + timedelta(seconds=6))
    assert [r.method for r in writes(fake)] == ["POST"] * 3
    fake.clear_requests()

    for number in range(10, 60):  # fifty defects filed within seconds
        await hooks.deliver("issues", issue(number, ["bug", "P1"]))
    await launch("201", *["failed"] * 200)  # and a launch that fails 200 tests
    assert len(await outbox.pending(outbox.PULL_REQUEST_CHECKS)) == 3
    assert await publisher.drain(now=utcnow()) == 0
    await publisher.drain(now=utcnow() + timedelta(seconds=6))
    assert [(r.method, r.json()["output"]["title"]) for r in writes(fake)] == [
        (
            "PATCH",
            "Blocked: 200 required tests failing, pass rate 0% (needs 95%), 50 blocking defects, 0 of 1 approvals",
        )
    ] * 3
    reads = [r for r in fake.requests if r.method == "GET"]
    assert reads == [], "publishing an edit reads nothing from GitHub"


async def test_leaving_the_milestone_completes_the_old_check_as_neutral(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await hooks.deliver("pull_request", pull_request("demilestoned", milestone=False))  # into master: v3.0's
    await settle(hooks)
    old_run = the_repo(fake).check_runs_for(HEAD, name="Milestone gate: v1.0")[0]["id"]
    assert [
        (r.method, r.path, r.json()["name"], r.json()["conclusion"], r.json()["output"]["title"])
        for r in writes(fake)[1:]
    ] == [
        ("POST", CHECKS, "Milestone gate: v3.0", "neutral", "No data: no test results yet"),
        (
            "PATCH",
            f"{CHECKS}/{old_run}",
            "Milestone gate: v1.0",
            "neutral",
            "This pull request is no longer in this milestone",
        ),
    ]
    assert writes(fake)[2].json()["actions"] == [], "no Re-evaluate on a check that no longer applies"
    await launch("101", "failed")  # v1.0 changes: the pull request left it, nothing more is written
    fake.clear_requests()
    await settle(hooks)
    assert [(r.method, r.json()["name"]) for r in writes(fake)] == [("PATCH", "Milestone gate: v3.0")]
    await hooks.deliver("pull_request", pull_request("milestoned"))  # back into v1.0: the same check again
    await settle(hooks)
    assert [(r.method, r.path, r.json()["name"]) for r in writes(fake)[1:]] == [
        ("PATCH", f"{CHECKS}/{old_run}", "Milestone gate: v1.0"),
        ("PATCH", writes(fake)[0].path, "Milestone gate: v3.0"),
    ]


async def test_reevaluate_rerun_and_a_rerequested_suite_write_the_check_again(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    run_id = (await GateCheck.get()).github_id
    clicked = fixture("check_run", "requested_action", repository=REPO)
    clicked["check_run"].update(id=run_id, name="Milestone gate: v1.0", head_sha=HEAD)
    clicked["requested_action"] = {"identifier": "reevaluate"}
    rerun = fixture("check_run", "rerequested", repository=REPO)
    rerun["check_run"].update(id=run_id, name="Milestone gate: v1.0", head_sha=HEAD)
    suite = fixture("check_suite", "rerequested", repository=REPO)
    for event, payload in (("check_run", clicked), ("check_run", rerun), ("check_suite", suite)):
        delivery = await hooks.deliver(event, payload)
        assert delivery.status is DeliveryStatus.DONE, delivery.error
        await settle(hooks)
    assert [(r.method, r.path) for r in writes(fake)] == [("POST", CHECKS)] + [("PATCH", f"{CHECKS}/{run_id}")] * 3


async def test_actions_and_check_runs_that_are_not_ours_are_ignored(hooks, fake):
    theirs = fixture("check_run", "requested_action", repository=REPO)  # electron's "lgtm" button
    assert (await hooks.deliver("check_run", theirs)).note == "check run action 'lgtm|26764' is not ours"
    foreign = fixture("check_run", "rerequested", repository=REPO)
    assert (await hooks.deliver("check_run", foreign)).note == "check run 4 (randscape) is not one of ours"
    await settle(hooks)
    assert writes(fake) == []


async def test_a_fork_suite_finds_its_pull_request_by_head_commit(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    suite = fixture("check_suite", "rerequested", repository=REPO)
    suite["check_suite"]["pull_requests"] = []
    delivery = await hooks.deliver("check_suite", suite)
    assert delivery.status is DeliveryStatus.DONE and delivery.note.startswith("checks of 1 pull request(s)")
    await settle(hooks)
    assert [r.method for r in writes(fake)] == ["POST", "PATCH"]


async def test_a_closed_pull_request_is_not_updated(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await hooks.deliver("pull_request", pull_request("closed", state="closed"))
    await launch("101", "failed")
    await settle(hooks)
    assert [r.method for r in writes(fake)] == ["POST"]


async def test_five_thousand_failing_required_tests_fit_in_the_check(hooks, fake):
    await launch("101", *["failed"] * 5000)
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    [created] = writes(fake)
    output = created.json()["output"]
    assert all(len(output[field].encode()) <= 65_535 for field in ("summary", "text"))
    shown = sum(1 for line in output["text"].splitlines() if line.startswith("- `com.acme.Checkout.test_"))
    assert 0 < shown < 5000
    assert (
        f"- _… and {5000 - shown:,} more failing tests not shown: see [the milestone]({created.json()['details_url']})_"
        in output["text"]
    )
    assert fake.errors == []


async def test_a_low_rate_limit_holds_the_checks_until_it_resets(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    fake.rate_remaining = 150
    await hooks.worker.drain()
    fake.requests.clear()
    publisher = hooks.app.state.publisher
    await publisher.drain()
    await publisher.drain()  # the first attempt learned the limit; the second waits for the reset
    assert writes(fake) == []
    [waiting] = await outbox.pending(outbox.PULL_REQUEST_CHECKS)
    assert waiting.not_before is not None and waiting.not_before > utcnow()
    assert waiting.attempts == 0, "a rate limit is not the work's failure"


async def test_a_failing_github_is_retried_later(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    fake.fail_next("POST", CHECKS, 502, times=10)
    publisher = hooks.app.state.publisher
    await publisher.drain()
    [waiting] = await outbox.pending(outbox.PULL_REQUEST_CHECKS)
    assert waiting.attempts == 1 and "502" in waiting.last_error
    assert await GateCheck.all().count() == 0
    fake._failures.clear()
    await publisher.drain(now=waiting.not_before + timedelta(seconds=1))
    assert [r.method for r in writes(fake) if r.path == CHECKS][-1] == "POST"
    assert await GateCheck.all().count() == 1


async def test_with_a_token_the_gate_is_a_commit_status(db, fake):
    await services.apply_policy_file(REPO, POLICY)
    await services.save_milestone(REPO, "v1.0", github_number=1)
    async with running_app(app_settings(db, fake, github_token="ghp_test")) as hooks:
        await hooks.deliver("pull_request", pull_request("opened"))
        await settle(hooks)
        await launch("101", "passed", "failed")
        await settle(hooks)
        page = hooks.app.state.page_links.milestone_url(REPO, "v1.0")
    assert [(r.method, r.path, r.json()) for r in writes(fake)] == [
        (
            "POST",
            f"/repos/{REPO}/statuses/{HEAD}",
            {
                "state": "pending",
                "context": "milestone-gate/v1.0",
                "description": "No data: no test results yet, 0 of 1 approvals",
                "target_url": f"{page}#criteria",
            },
        ),
        (
            "POST",
            f"/repos/{REPO}/statuses/{HEAD}",
            {
                "state": "failure",
                "context": "milestone-gate/v1.0",
                "description": "Blocked: 1 required test failing, pass rate 50% (needs 95%), 0 of 1 approvals",
                "target_url": f"{page}#failing",
            },
        ),
    ]
    assert not any(r.path.startswith(CHECKS) for r in fake.requests)


CONFIG_ERRORS = b"plans:\n  smoke: {workflow: 3}\nmilestones:\n  v2:\n    pass_rate: 1.5\n"


async def test_a_pull_request_changing_the_policy_file_gets_a_config_check(hooks, fake):
    repo = the_repo(fake)
    repo.add_pull(5, HEAD, base="master", files=["README.md", ".github/milestones.yml"])
    repo.files[(".github/milestones.yml", HEAD)] = CONFIG_ERRORS
    await hooks.deliver("pull_request", pull_request("opened", number=5))
    await settle(hooks)
    [config] = [r.json() for r in writes(fake) if r.json().get("name") == "Milestone config"]
    assert (config["conclusion"], config["output"]["title"]) == ("failure", "2 errors in .github/milestones.yml")
    assert [(a["path"], a["start_line"], a["message"]) for a in config["output"]["annotations"]] == [
        (".github/milestones.yml", 2, "must be text; put it in quotes"),
        (".github/milestones.yml", 5, "must be between 0 and 1"),
    ]
    assert len(fake.calls("GET", f"/repos/{REPO}/pulls/5/files")) == 1
    await launch("101", "failed")  # a gate change does not look at the files again
    await settle(hooks)
    assert len(fake.calls("GET", f"/repos/{REPO}/pulls/5/files")) == 1

    fixed = "c" * 40
    repo.pull(5)["head"]["sha"] = fixed
    repo.files[(".github/milestones.yml", fixed)] = CONFIG_ERRORS.replace(b"3", b"ci.yml").replace(b"1.5", b"0.9")
    await hooks.deliver("pull_request", pull_request("synchronize", head=fixed, number=5))
    await settle(hooks)
    [config] = [
        r.json() for r in writes(fake) if r.json().get("name") == "Milestone config" and r.json()["head_sha"] == fixed
    ]
    assert (config["conclusion"], config["output"]["title"]) == ("success", "Milestone config is valid")


async def test_more_than_fifty_config_errors_are_annotated_in_follow_up_updates(hooks, fake):
    repo = the_repo(fake)
    repo.add_pull(5, HEAD, base="master", files=[".github/milestones.yml"])
    repo.files[(".github/milestones.yml", HEAD)] = b"milestones:\n" + b"".join(
        b"  m%d:\n    pass_rate: 7\n" % n for n in range(120)
    )
    await hooks.deliver("pull_request", pull_request("opened", number=5))
    await settle(hooks)
    [run] = the_repo(fake).check_runs_for(HEAD, name="Milestone config")
    assert len(run["annotations"]) == 120
    config_writes = [
        r
        for r in writes(fake)
        if r.path == CHECKS and r.json()["name"] == "Milestone config" or r.path == f"{CHECKS}/{run['id']}"
    ]
    assert [(r.method, len(r.json()["output"]["annotations"])) for r in config_writes] == [
        ("POST", 50),
        ("PATCH", 50),
        ("PATCH", 20),
    ]


async def test_a_pull_request_not_touching_the_policy_gets_no_config_check(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    assert [r.json()["name"] for r in writes(fake)] == ["Milestone gate: v1.0"]


async def test_nothing_is_published_for_a_suspended_installation(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await record_installation(1, "Codertocat", InstallationStatus.SUSPENDED, added=[REPO])
    await settle(hooks)
    assert writes(fake) == []
    assert await outbox.pending(outbox.PULL_REQUEST_CHECKS) == []


async def test_a_renamed_milestone_renames_its_check(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await services.save_milestone(REPO, "v1.0.1", github_number=1)  # renamed on GitHub
    await settle(hooks)
    [run] = the_repo(fake).check_runs_for(HEAD, name="Milestone gate: v1.0.1")
    assert [(r.method, r.json()["name"]) for r in writes(fake)] == [
        ("POST", "Milestone gate: v1.0"),
        ("PATCH", "Milestone gate: v1.0.1"),
    ]
    assert writes(fake)[1].path == f"{CHECKS}/{run['id']}"


async def test_a_check_run_created_but_never_recorded_is_taken_over_not_duplicated(hooks, fake):
    # A publisher created the check and died before recording it (or lost its claim meanwhile).
    orphan = the_repo(fake).add_check_run("Milestone gate: v1.0", HEAD, status="completed", conclusion="neutral")
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    assert [(r.method, r.path) for r in writes(fake)] == [("PATCH", f"{CHECKS}/{orphan['id']}")]
    assert (await GateCheck.get()).github_id == orphan["id"]
    assert len(the_repo(fake).check_runs_for(HEAD)) == 1


async def test_publishing_resumes_once_the_rate_limit_resets(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    fake.rate_remaining, fake.rate_reset = 150, int(time.time()) - 1  # nearly spent, about to reset
    publisher = hooks.app.state.publisher
    await publisher.drain()
    assert writes(fake) == []
    [waiting] = await outbox.pending(outbox.PULL_REQUEST_CHECKS)
    fake.rate_remaining, fake.rate_reset = 5000, int(time.time()) + 3600  # the hour was reset
    await publisher.drain(now=waiting.not_before + timedelta(seconds=1))
    assert [r.method for r in writes(fake)] == ["POST"]
    assert await outbox.pending(outbox.PULL_REQUEST_CHECKS) == []


async def test_rerunning_the_config_check_validates_the_file_again(hooks, fake):
    repo = the_repo(fake)
    repo.add_pull(5, HEAD, base="master", files=[".github/milestones.yml"])
    repo.files[(".github/milestones.yml", HEAD)] = CONFIG_ERRORS
    await hooks.deliver("pull_request", pull_request("opened", number=5))
    await settle(hooks)
    config = await GateCheck.get(slot="config")
    rerun = fixture("check_run", "rerequested", repository=REPO)
    rerun["check_run"].update(id=config.github_id, name="Milestone config", head_sha=HEAD)
    await hooks.deliver("check_run", rerun)
    await settle(hooks)
    assert len(fake.calls("GET", f"/repos/{REPO}/pulls/5/files")) == 2
    assert [(r.method, r.path) for r in writes(fake) if r.path == f"{CHECKS}/{config.github_id}"] == [
        ("PATCH", f"{CHECKS}/{config.github_id}")
    ]


async def test_the_hourly_refresh_writes_only_what_the_calendar_changed(hooks, fake):
    await hooks.deliver("pull_request", pull_request("opened"))
    await settle(hooks)
    await refresh_open_checks()
    assert len(await outbox.pending(outbox.PULL_REQUEST_CHECKS)) == 1
    await settle(hooks)
    assert [r.method for r in writes(fake)] == ["POST"], "nothing changed since: nothing written"
    await services.save_milestone(REPO, "v1.0", github_number=1, target_date=utcnow().date() - timedelta(days=2))
    await settle(hooks)
    assert writes(fake)[-1].json()["output"]["title"].startswith("Overdue by 2 days · ")


async def test_close_on_complete_closes_the_github_milestone_and_reopens_it_after_a_late_defect(hooks, fake):
    the_repo(fake).add_milestone(1, "v1.0")
    await services.apply_policy_file(
        REPO, POLICY.replace("signoff: {approvers: [U1]}", "signoff: {approvers: [U1]}\n    close_on_complete: true")
    )
    await launch("101", "passed", "passed")
    await services.record_decision(REPO, "v1.0", "U1", Decision.APPROVE)
    # GitHub's owed work is the check publisher's.
    publisher = hooks.app.state.publisher
    assert await publisher.drain(now=utcnow() + timedelta(seconds=11)) >= 1
    milestone_writes = [r for r in writes(fake) if "/milestones/" in r.path]
    assert [(r.method, r.path, r.json()) for r in milestone_writes] == [
        ("PATCH", f"/repos/{REPO}/milestones/1", {"title": "v1.0", "state": "closed"})
    ]
    assert the_repo(fake).milestone(1)["state"] == "closed"
    # GitHub's milestone event for the close keeps the completion.
    closed = fixture("milestone", "closed")
    closed["milestone"].update(number=1, title="v1.0", state="closed", due_on=None)
    await hooks.deliver("milestone", closed)
    await hooks.worker.drain()
    assert (await services.get_verdict(REPO, "v1.0")).status.value == "complete"
    # A critical defect filed late reopens it, here and on GitHub.
    await hooks.deliver("issues", issue(7, ["bug", "P0"]))
    await hooks.worker.drain()
    await publisher.drain(now=utcnow() + timedelta(seconds=11))
    assert the_repo(fake).milestone(1)["state"] == "open"
    assert await Outbox.filter(topic=outbox.GITHUB_MILESTONE_STATE).count() == 0


async def test_a_milestone_closed_reopened_or_renamed_here_is_mirrored_on_github(hooks, fake):
    the_repo(fake).add_milestone(1, "v1.0")
    publisher = hooks.app.state.publisher
    await services.edit_milestone(REPO, "v1.0", new_name="v1.0.0")
    await services.edit_milestone(REPO, "v1.0.0", state=MilestoneState.CLOSED)
    # One piece of work for both changes, once they settled.
    await publisher.drain(now=utcnow() + timedelta(seconds=61))
    milestone_writes = [r for r in writes(fake) if "/milestones/" in r.path]
    assert [(r.method, r.path, r.json()) for r in milestone_writes] == [
        ("PATCH", f"/repos/{REPO}/milestones/1", {"title": "v1.0.0", "state": "closed"})
    ]
    assert (the_repo(fake).milestone(1)["title"], the_repo(fake).milestone(1)["state"]) == ("v1.0.0", "closed")
    await services.edit_milestone(REPO, "v1.0.0", state=MilestoneState.OPEN)
    await publisher.drain(now=utcnow() + timedelta(seconds=61))
    assert the_repo(fake).milestone(1)["state"] == "open"
    assert await Outbox.filter(topic=outbox.GITHUB_MILESTONE_EDIT).count() == 0
    # GitHub's own event for the rename finds the milestone by number and keeps it.
    edited = fixture("milestone", "created", action="edited", changes={"title": {"from": "v1.0"}})
    edited["milestone"].update(number=1, title="v1.0.0", state="open", due_on=None)
    await hooks.deliver("milestone", edited)
    await hooks.worker.drain()
    names = [summary.name for summary in await services.list_milestones([REPO])]
    assert "v1.0.0" in names and "v1.0" not in names


async def test_a_clone_gets_its_github_milestone_recorded_as_its_twin(hooks, fake):
    the_repo(fake).add_milestone(1, "v1.0")
    due = utcnow().date() + timedelta(days=30)
    clone = await services.clone_milestone(REPO, "v1.0", "v1.1", target_date=due)
    assert clone.github
    publisher = hooks.app.state.publisher
    assert await publisher.drain(now=utcnow() + timedelta(seconds=11)) >= 1
    created = [r for r in writes(fake) if r.method == "POST" and r.path == f"/repos/{REPO}/milestones"]
    assert [r.json() for r in created] == [{"title": "v1.1", "due_on": f"{due.isoformat()}T00:00:00Z"}]
    [twin] = [milestone for milestone in the_repo(fake).milestones if milestone["title"] == "v1.1"]
    assert (await Milestone.get(name="v1.1")).github_number == twin["number"]
    # Owed once: nothing more to create.
    assert await Outbox.filter(topic=outbox.GITHUB_MILESTONE_CREATE).count() == 0
    # A clone whose title GitHub already has takes that milestone as its twin.
    the_repo(fake).add_milestone(7, "v1.2")
    await services.clone_milestone(REPO, "v1.0", "v1.2")
    await publisher.drain(now=utcnow() + timedelta(seconds=11))
    assert (await Milestone.get(name="v1.2")).github_number == 7
