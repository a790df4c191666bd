"""Payloads validated at the edge: what can never succeed fails at once with the reason; only
what may pass on another attempt (the database, the network, GitHub) is retried."""

from __future__ import annotations

import json

import httpx
import pytest
from github import GithubException, RateLimitExceededException
from tortoise.exceptions import IntegrityError, OperationalError

from core import inbox, services
from core.enums import DeliveryStatus
from core.models import Defect, Delivery, Milestone, PullRequest
from integrations.github.worker import transient
from tests.conftest import WEBHOOKS
from tests.github import fixture, running_app, settings_for

REPO = "Codertocat/Hello-World"


@pytest.fixture
async def hooks(db):
    async with running_app(settings_for(db)) as running:
        yield running


def issue(**changes: object) -> dict:
    payload = fixture("issues", "opened")
    payload["issue"].update(changes)
    return payload


@pytest.mark.parametrize(
    "payload, reason",
    [
        (fixture("issues", "opened", issue="#12"), "issue: Input should be an object"),
        (issue(number="twelve"), "issue.number: Input should be a valid integer, unable to parse string as an integer"),
        (issue(number=2**63), "issue.number: Input should be less than or equal to 9223372036854775807"),
        (issue(updated_at="yesterday"), "issue.updated_at: Input should be a valid datetime or date, input is too short"),
        (issue(state="gone"), "issue.state: Input should be 'open' or 'closed'"),
        (issue(labels=[{"name": 5}]), "issue.labels.0.name: Input should be a valid string"),
        (issue(html_url="https://github.com/" + "x" * 500), "issue.html_url: String should have at most 500 characters"),
        ({**fixture("issues", "opened"), "repository": None}, "repository: Input should be an object"),
    ],
    ids=["issue-text", "number-text", "number-over-int64", "date-not-a-date", "unknown-state", "label-number",
         "url-too-long", "no-repository"],
)  # fmt: skip
async def test_an_issue_payload_that_can_never_succeed_fails_at_once_with_the_reason(hooks, payload, reason):
    delivery = await hooks.deliver("issues", payload)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert delivery.error == f"issues payload is invalid: {reason}"
    # What `milestones deliveries --failed` lists.
    [listed] = await inbox.recent(DeliveryStatus.FAILED)
    assert (listed.guid, listed.error) == (delivery.guid, delivery.error)
    assert not await Defect.exists()


@pytest.mark.parametrize(
    "event, payload, reason",
    [
        (
            "milestone",
            fixture(
                "milestone", "created", milestone={**fixture("milestone", "created")["milestone"], "due_on": "soon"}
            ),
            "milestone.due_on: Input should be a valid datetime or date, input is too short",
        ),
        (
            "pull_request",
            fixture("pull_request", "opened", pull_request="#2"),
            "pull_request: Input should be an object",
        ),
        (
            "installation",
            fixture("installation", "created", installation={"id": 4, "account": {"login": "o" * 201}}),
            "installation.account.login: String should have at most 200 characters",
        ),
        (
            "workflow_run",
            fixture("workflow_run", "completed", workflow_run={"id": 2**64}),
            "workflow_run.id: Input should be less than or equal to 9223372036854775807",
        ),
    ],
    ids=["due-date-not-a-date", "pull-request-text", "login-too-long", "run-id-over-int64"],
)
async def test_other_payloads_that_can_never_succeed_fail_at_once(hooks, event, payload, reason):
    delivery = await hooks.deliver(event, payload)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 1)
    assert delivery.error == f"{event} payload is invalid: {reason}"


async def test_github_numbers_past_32_bits_are_stored_whole(hooks):
    big = 2**40 + 7
    milestone = fixture("milestone", "created")
    milestone["milestone"]["number"] = big
    assert (await hooks.deliver("milestone", milestone)).status is DeliveryStatus.DONE
    opened = issue(number=2**31 + 1, milestone=milestone["milestone"])
    delivery = await hooks.deliver("issues", opened)
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    pull = fixture("pull_request", "opened")
    pull["pull_request"].update(number=2**53 + 3, milestone=milestone["milestone"])
    assert (await hooks.deliver("pull_request", pull)).status is DeliveryStatus.DONE
    stored = await Milestone.get(github_number=big)
    defect = await Defect.get(number=2**31 + 1)
    assert defect.milestone_id == stored.id  # type: ignore[attr-defined]
    assert (await PullRequest.get(number=2**53 + 3)).milestone_id == stored.id  # type: ignore[attr-defined]


async def test_a_milestone_title_past_the_column_is_stored_clipped(hooks):
    title = "Release " + "x" * 292
    payload = fixture("milestone", "created")
    payload["milestone"]["title"] = title
    delivery = await hooks.deliver("milestone", payload)
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    [milestone] = await Milestone.all()
    assert milestone.name == title[:200]
    # An issue carrying the same GitHub milestone lands on it.
    opened = issue(milestone={**payload["milestone"], "number": 99})
    assert (await hooks.deliver("issues", opened)).status is DeliveryStatus.DONE
    assert (await Defect.get(number=1)).milestone_id == milestone.id  # type: ignore[attr-defined]
    assert await Milestone.all().count() == 1


async def test_text_with_nul_is_stored_without_it(hooks):
    payload = issue(title="Crash on \u0000 input", labels=[{"name": "bug\u0000"}, {"name": "P0"}])
    delivery = await hooks.deliver("issues", payload)
    assert delivery.status is DeliveryStatus.DONE, delivery.error
    defect = await Defect.get(number=1)
    assert (defect.title, defect.labels) == ("Crash on  input", ["bug", "P0"])


async def test_a_failure_of_our_own_is_not_retried_and_a_database_outage_is(hooks, monkeypatch):
    async def broken(repository, facts):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "upsert_defect", broken)
    delivery = await hooks.deliver("issues", issue())
    assert (delivery.status, delivery.attempts, delivery.error) == (DeliveryStatus.FAILED, 1, "RuntimeError: a bug")

    async def away(repository, facts):
        raise OperationalError("connection lost") from ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(services, "upsert_defect", away)
    delivery = await hooks.deliver("issues", issue())
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert delivery.error == "OperationalError: connection lost"


def github_error(status: int, message: str = "") -> GithubException:
    return GithubException(status, {"message": message}, {})


@pytest.mark.parametrize(
    "error, retried",
    [
        (OperationalError('relation "defect" does not exist'), False),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (IntegrityError("duplicate key"), True),
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (github_error(502, "Bad Gateway"), True),
        (github_error(403, "You have exceeded a secondary rate limit"), True),
        (RateLimitExceededException(403, {"message": "API rate limit exceeded"}, {}), True),
        (github_error(404, "Not Found"), False),
        (github_error(401, "Bad credentials"), False),
        (github_error(403, "Resource not accessible by integration"), False),
        (ValueError("repository must be OWNER/NAME"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_only_unavailability_is_transient(error, retried):
    assert transient(error) is retried


def test_a_database_error_from_a_lost_connection_is_transient():
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as cause:
            raise OperationalError(cause)  # noqa: B904 (as Tortoise wraps it: the driver's error is the context)
    except OperationalError as wrapped:
        assert transient(wrapped)


def real_payloads() -> list[tuple[str, str]]:
    return sorted(
        (folder.name, file.name) for folder in WEBHOOKS.iterdir() if folder.is_dir() for file in folder.glob("*.json")
    )


async def test_every_real_payload_is_filed_and_none_fails_validation(hooks):
    for event, name in real_payloads():
        payload = json.loads((WEBHOOKS / event / name).read_text())
        response = await hooks.send(event, payload)
        assert response.status_code == 202, (event, name, response.text)
    await hooks.worker.drain()
    failed = [(delivery.event, delivery.error) for delivery in await Delivery.filter(status=DeliveryStatus.FAILED)]
    assert failed == []
    assert await Delivery.filter(status=DeliveryStatus.DONE).count() > 20
