"""Each event's handler, fed the real payloads: milestones, issues, labels, installations, pull requests."""

from __future__ import annotations

from datetime import date

import pytest

from core import pull_requests, services
from core.enums import DeliveryStatus, InstallationStatus, MilestoneState, Severity
from core.installations import installation_for, installation_status
from core.models import Defect, Milestone, PullRequest
from tests.github import fixture, running_app, settings_for

REPO = "Codertocat/Hello-World"


@pytest.fixture
async def hooks(db):
    async with running_app(settings_for(db)) as running:
        yield running


def milestone_payload(action: str, **fields) -> dict:
    payload = fixture("milestone", "created", action=action)
    payload["milestone"].update(fields)
    return payload


async def test_a_github_milestone_becomes_ours_with_its_due_date(hooks):
    delivery = await hooks.deliver("milestone", fixture("milestone", "created"))
    assert delivery.status is DeliveryStatus.DONE
    milestone = await Milestone.get(name="v1.0")
    assert (milestone.github_number, milestone.target_date, milestone.state) == (
        1,
        date(2019, 5, 23),
        MilestoneState.OPEN,
    )
    assert milestone.description == "Add new space flight simulator"


async def test_a_renamed_github_milestone_keeps_its_history(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    await hooks.deliver("issues", fixture("issues", "opened"))
    await hooks.deliver("milestone", milestone_payload("edited", title="v1.0.0", due_on=None))
    renamed = await Milestone.get(github_number=1)
    assert renamed.name == "v1.0.0" and renamed.target_date is None
    assert [defect.number for defect in await Defect.filter(milestone=renamed)] == [1]
    assert not await Milestone.filter(name="v1.0").exists()


async def test_closing_and_deleting_a_github_milestone(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    await hooks.deliver("milestone", fixture("milestone", "closed"))
    assert (await Milestone.get(name="v1.0")).state is MilestoneState.CLOSED
    await hooks.deliver("milestone", milestone_payload("opened", state="open"))
    assert (await Milestone.get(name="v1.0")).state is MilestoneState.OPEN
    delivery = await hooks.deliver("milestone", fixture("milestone", "deleted"))
    assert delivery.note == "milestone v1.0 closed, its GitHub milestone deleted"
    milestone = await Milestone.get(name="v1.0")
    assert (milestone.state, milestone.github_number) == (MilestoneState.CLOSED, None)


def issue_payload(
    action: str, *, labels: list[str], updated_at: str, state: str = "open", reason: str | None = None
) -> dict:
    payload = fixture("issues", "opened", action=action)
    payload["issue"].update(
        labels=[{"name": name} for name in labels], updated_at=updated_at, state=state, state_reason=reason
    )
    return payload


async def test_an_issue_with_a_defect_label_blocks_its_milestone(hooks):
    delivery = await hooks.deliver(
        "issues", issue_payload("labeled", labels=["bug", "P0"], updated_at="2026-11-20T10:00:00Z")
    )
    assert delivery.note == "issue #1: defect, severity critical, open"
    verdict = await services.get_verdict(REPO, "v1.0")
    assert [defect.number for defect in verdict.blocking.defects] == [1]


async def test_an_older_issue_event_arriving_late_never_overwrites_newer_state(hooks):
    newer = issue_payload(
        "closed", labels=["bug", "P0"], updated_at="2026-11-20T12:00:00Z", state="closed", reason="completed"
    )
    older = issue_payload("labeled", labels=["bug", "P0"], updated_at="2026-11-20T10:00:00Z")
    await hooks.deliver("issues", newer)
    delivery = await hooks.deliver("issues", older)
    assert delivery.status is DeliveryStatus.DONE
    assert delivery.note == "issue #1: older than the stored state, not applied"
    defect = await Defect.get(number=1)
    assert defect.issue_state == "closed"
    assert (await services.get_verdict(REPO, "v1.0")).blocking.defects == []


async def test_issue_actions_change_the_defect(hooks):
    steps = [
        ("opened", issue_payload("opened", labels=["bug", "P1"], updated_at="2026-11-20T10:00:00Z"), "open", True),
        (
            "closed",
            issue_payload(
                "closed", labels=["bug", "P1"], updated_at="2026-11-20T11:00:00Z", state="closed", reason="not_planned"
            ),
            "resolved",
            False,
        ),
        ("reopened", issue_payload("reopened", labels=["bug", "P1"], updated_at="2026-11-20T12:00:00Z"), "open", True),
        ("unlabeled", issue_payload("unlabeled", labels=["P1"], updated_at="2026-11-20T13:00:00Z"), "open", False),
        ("labeled", issue_payload("labeled", labels=["P1", "bug"], updated_at="2026-11-20T14:00:00Z"), "open", True),
        (
            "transferred",
            issue_payload("transferred", labels=["P1", "bug"], updated_at="2026-11-20T15:00:00Z"),
            "open",
            False,
        ),
    ]
    for action, payload, state, counts in steps:
        await hooks.deliver("issues", payload)
        defect = await Defect.get(number=1)
        assert (defect.state.value, defect.counts) == (state, counts), action
        assert defect.severity is Severity.HIGH


async def test_demilestoned_and_deleted_issues(hooks):
    await hooks.deliver("issues", issue_payload("opened", labels=["bug", "P0"], updated_at="2026-11-20T10:00:00Z"))
    demilestoned = fixture("issues", "demilestoned")
    demilestoned["issue"].update(labels=[{"name": "bug"}, {"name": "P0"}], updated_at="2026-11-20T11:00:00Z", number=1)
    await hooks.deliver("issues", demilestoned)
    assert (await Defect.get(number=1)).milestone_id is None
    deleted = fixture("issues", "deleted")
    deleted["issue"].update(number=1, updated_at="2026-11-20T12:00:00Z")
    await hooks.deliver("issues", deleted)
    assert (await Defect.get(number=1)).deleted


async def test_a_renamed_severity_label_keeps_working(hooks):
    await hooks.deliver("issues", issue_payload("labeled", labels=["bug", "P0"], updated_at="2026-11-20T10:00:00Z"))
    renamed = fixture("label", "edited", changes={"name": {"from": "P0"}})
    renamed["label"]["name"] = "priority: urgent"
    delivery = await hooks.deliver("label", renamed)
    assert delivery.note == "label 'P0' renamed to 'priority: urgent'"
    defect = await Defect.get(number=1)
    assert defect.labels == ["bug", "priority: urgent"] and defect.severity is Severity.CRITICAL
    # The real `edited` payload changes only the colour: nothing to do.
    assert (await hooks.deliver("label", fixture("label", "edited"))).status is DeliveryStatus.IGNORED


async def test_a_deleted_severity_label_leaves_the_issues(hooks):
    await hooks.deliver("issues", issue_payload("labeled", labels=["bug", "P0"], updated_at="2026-11-20T10:00:00Z"))
    deleted = fixture("label", "deleted")
    deleted["label"]["name"] = "P0"
    await hooks.deliver("label", deleted)
    assert (await Defect.get(number=1)).severity is Severity.NONE


async def test_installations_record_repositories_and_suspension_stops_work(hooks):
    created = fixture("installation", "created")
    await hooks.deliver("installation", created)
    installation = created["installation"]["id"]
    assert await installation_for("Codertocat/Hello-World") == installation
    await hooks.deliver("installation_repositories", fixture("installation_repositories", "added"))
    assert await installation_for("Codertocat/Space") == installation
    removed = fixture("installation_repositories", "removed")
    removed["installation"]["id"] = installation
    removed["repositories_removed"][0]["full_name"] = "Codertocat/Space"
    await hooks.deliver("installation_repositories", removed)
    assert await installation_for("Codertocat/Space") is None

    suspended = fixture("installation", "suspend")
    suspended["installation"]["id"] = installation
    await hooks.deliver("installation", suspended)
    assert await installation_status(installation) is InstallationStatus.SUSPENDED
    payload = issue_payload("opened", labels=["bug"], updated_at="2026-11-20T10:00:00Z")
    payload["installation"] = {"id": installation}
    delivery = await hooks.deliver("issues", payload)
    assert (delivery.status, delivery.note) == (DeliveryStatus.IGNORED, f"installation {installation} is suspended")
    assert not await Defect.exists()

    unsuspended = fixture("installation", "unsuspend")
    unsuspended["installation"]["id"] = installation
    await hooks.deliver("installation", unsuspended)
    assert (await hooks.deliver("issues", payload, "again")).status is DeliveryStatus.DONE


async def test_a_pull_request_records_its_milestone(hooks):
    await hooks.deliver("milestone", fixture("milestone", "created"))
    opened = fixture("pull_request", "opened")
    opened["pull_request"]["milestone"] = fixture("milestone", "created")["milestone"]
    delivery = await hooks.deliver("pull_request", opened)
    assert delivery.note == "pull request #2 into master"
    pull = await PullRequest.get(number=2).prefetch_related("milestone")
    assert (pull.head_sha, pull.base_ref, pull.milestone.name) == (
        "ec26c3e57ca3a959ca5aad62de7213c562f8c821",
        "master",
        "v1.0",
    )
    assert [m.name for m in await pull_requests.pull_request_milestones(REPO, 2)] == ["v1.0"]
    synchronize = fixture("pull_request", "synchronize")
    assert (await hooks.deliver("pull_request", synchronize)).status is DeliveryStatus.DONE


async def test_a_payload_missing_what_its_handler_needs_fails_at_once(hooks):
    payload = fixture("milestone", "created")
    del payload["milestone"]["title"]
    delivery = await hooks.deliver("milestone", payload)
    assert delivery.status is DeliveryStatus.FAILED and delivery.attempts == 1
    assert delivery.error == "milestone payload is invalid: milestone.title: Field required"
