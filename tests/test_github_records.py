"""What GitHub tells us beyond tests and issues: label renames, pull requests, installations, milestones."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from core import pull_requests, services
from core.catalog import NotFound
from core.enums import InstallationStatus, MilestoneState, Severity
from core.installations import installation_for, installation_status, record_installation
from core.models import Defect, Milestone, PullRequest, Repository
from tests.test_services import POLICY, REPO, T0, issue, setup_policy, verdict


async def test_a_renamed_severity_label_keeps_its_severity(db: str) -> None:
    await setup_policy()
    await services.upsert_defect(REPO, issue(1, ["bug", "P1"]))
    changes = await services.rename_label(REPO, "P1", "priority: high")
    defect = await Defect.get(number=1)
    assert defect.labels == ["bug", "priority: high"]
    assert defect.severity is Severity.HIGH
    assert {change.milestone.name for change in changes} >= {"v2.0"}
    # A later event carries the new name only; the policy still says P1.
    await services.upsert_defect(REPO, issue(2, ["bug", "priority: high"], at=T0 + timedelta(hours=1)))
    assert (await Defect.get(number=2)).severity is Severity.HIGH
    assert [d.number for d in (await verdict()).blocking.defects] == [1, 2]


async def test_a_label_renamed_twice_still_maps_to_the_first_name(db: str) -> None:
    await setup_policy()
    await services.rename_label(REPO, "bug", "defect")
    await services.rename_label(REPO, "defect", "Defect!")
    assert (await Repository.get(full_name=REPO)).label_aliases == {"defect!": ["defect", "bug"]}
    await services.upsert_defect(REPO, issue(3, ["Defect!", "P0"]))
    defect = await Defect.get(number=3)
    assert defect.counts and defect.severity is Severity.CRITICAL


async def test_a_deleted_label_leaves_every_issue(db: str) -> None:
    await setup_policy()
    await services.upsert_defect(REPO, issue(1, ["bug", "P0"]))
    assert (await verdict()).blocking.defects
    await services.delete_label(REPO, "P0")
    defect = await Defect.get(number=1)
    assert defect.labels == ["bug"] and defect.severity is Severity.NONE
    assert (await verdict()).blocking.defects == []
    await services.delete_label(REPO, "BUG")
    assert not (await Defect.get(number=1)).counts


async def test_a_pull_request_takes_its_github_milestone(db: str) -> None:
    await setup_policy()
    await services.save_milestone(REPO, "v2.0", github_number=4)
    pull = await services.record_pull_request(
        REPO,
        services.PullRequestFacts(
            number=9, head_sha="abc", base_ref="main", milestone_number=4, milestone_title="v2.0", updated_at=T0
        ),
    )
    assert pull is not None and pull.head_sha == "abc"
    assert [m.name for m in await pull_requests.pull_request_milestones(REPO, 9)] == ["v2.0"]


async def test_a_pull_request_without_milestone_belongs_to_those_tracking_its_base(db: str) -> None:
    await setup_policy()
    await services.save_milestone(REPO, "v3.0", policy_text=POLICY + '  "v3.0":\n    branches: [main]\n')
    await services.save_milestone(REPO, "anything")  # counts every branch: claims no pull request
    await services.record_pull_request(
        REPO, services.PullRequestFacts(number=1, head_sha="a", base_ref="release/2.0", updated_at=T0)
    )
    await services.record_pull_request(
        REPO, services.PullRequestFacts(number=2, head_sha="b", base_ref="main", updated_at=T0)
    )
    await services.record_pull_request(
        REPO, services.PullRequestFacts(number=3, head_sha="c", base_ref="feature/x", updated_at=T0)
    )
    assert [m.name for m in await pull_requests.pull_request_milestones(REPO, 1)] == ["v2.0"]
    assert [m.name for m in await pull_requests.pull_request_milestones(REPO, 2)] == ["v3.0"]
    assert await pull_requests.pull_request_milestones(REPO, 3) == []
    with pytest.raises(NotFound):
        await pull_requests.pull_request_milestones(REPO, 4)


async def test_an_older_pull_request_event_changes_nothing(db: str) -> None:
    await services.record_pull_request(
        REPO, services.PullRequestFacts(number=1, head_sha="new", base_ref="main", updated_at=T0)
    )
    stale = await services.record_pull_request(
        REPO, services.PullRequestFacts(number=1, head_sha="old", base_ref="main", updated_at=T0 - timedelta(minutes=1))
    )
    assert stale is None
    assert (await PullRequest.get(number=1)).head_sha == "new"


async def test_installations_record_their_repositories_and_state(db: str) -> None:
    await record_installation(42, "acme", InstallationStatus.ACTIVE, added=["acme/shop", "acme/api"])
    assert await installation_for("acme/shop") == 42 and await installation_for("acme/api") == 42
    await record_installation(42, "acme", InstallationStatus.ACTIVE, removed=["acme/api"])
    assert await installation_for("acme/api") is None
    await record_installation(42, "acme", InstallationStatus.SUSPENDED)
    assert await installation_status(42) is InstallationStatus.SUSPENDED
    assert await installation_status(43) is None


async def test_a_github_milestone_can_clear_its_due_date_and_be_deleted(db: str) -> None:
    await services.save_milestone(REPO, "v2.0", github_number=5, target_date=date(2026, 12, 1))
    milestone, _ = await services.save_milestone(REPO, "v2.0", github_number=5)
    assert milestone.target_date == date(2026, 12, 1)
    milestone, _ = await services.save_milestone(REPO, "v2.0", github_number=5, target_date=None)
    assert milestone.target_date is None
    unlinked = await services.unlink_github_milestone(REPO, 5)
    assert unlinked is not None
    stored = await Milestone.get(name="v2.0")
    assert (stored.state, stored.github_number) == (MilestoneState.CLOSED, None)
    assert await services.unlink_github_milestone(REPO, 5) is None


async def test_repository_changes_during_a_suspension_do_not_lift_it(db: str) -> None:
    await record_installation(42, "acme", InstallationStatus.SUSPENDED)
    await record_installation(42, "acme", None, added=["acme/new"])
    assert await installation_status(42) is InstallationStatus.SUSPENDED
    assert await installation_for("acme/new") == 42
    await record_installation(43, "beta", None)
    assert await installation_status(43) is InstallationStatus.ACTIVE
