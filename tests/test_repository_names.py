"""Repository names compare as on GitHub, ignoring case, wherever a repository is looked up by name."""

from __future__ import annotations

from datetime import time

from core import channels, digests, services
from core.catalog import ensure_repository, find_repository
from core.installations import installation_for, record_installation
from core.lookup import resolve_milestone
from core.models import Repository
from core.pull_requests import open_pull_requests
from core.schedule import Schedule
from tests.slack import CHANNEL_ID, TEAM_ID, USER_ID


async def test_a_name_in_another_case_finds_the_stored_repository_everywhere(db: str) -> None:
    stored = await ensure_repository("acme/shop")
    await services.save_milestone("acme/shop", "v1")
    await services.record_pull_request(
        "acme/shop", services.PullRequestFacts(number=7, head_sha="abc", base_ref="main")
    )
    await record_installation(42, "acme", None, added=["acme/shop"])

    # Writers: no second repository, the spelling stored first stays.
    assert (await ensure_repository("ACME/Shop")).id == stored.id
    await services.save_milestone("Acme/SHOP", "v2")
    assert await Repository.all().values_list("full_name", flat=True) == ["acme/shop"]

    # Readers.
    assert (await find_repository("ACME/SHOP")).id == stored.id
    assert [(m.repository, m.name) for m in await services.list_milestones(["ACME/Shop"])] == [
        ("acme/shop", "v1"),
        ("acme/shop", "v2"),
    ]
    assert (await services.find_milestone("Acme/Shop", "v1")).repository.full_name == "acme/shop"
    resolution = await resolve_milestone("v1", ["ACME/SHOP"])
    assert resolution.found is not None and resolution.found.repository == "acme/shop"
    assert await installation_for("ACME/Shop") == 42
    assert len(await open_pull_requests("ACME/Shop", numbers=[7])) == 1

    # Slack: a channel linked, alerted and subscribed by a name in another case.
    assert await channels.link_channel(TEAM_ID, CHANNEL_ID, "ACME/shop", USER_ID) is None
    assert await channels.channel_repository(TEAM_ID, CHANNEL_ID) == "acme/shop"
    assert await channels.channels_of("Acme/Shop") == [CHANNEL_ID]
    schedule = Schedule("daily", time(9, 0), "UTC")
    _, created = await digests.subscribe(
        TEAM_ID, CHANNEL_ID, schedule, by=USER_ID, repository="ACME/SHOP", milestone="v1"
    )
    assert created
    assert await digests.unsubscribe(TEAM_ID, CHANNEL_ID, repository="acme/SHOP", milestone="v1") == 1

    # An installation that loses the repository, named in another case, lets it go.
    await record_installation(42, "acme", None, removed=["ACME/SHOP"])
    assert await installation_for("acme/shop") is None


async def test_a_list_of_no_repositories_finds_nothing(db: str) -> None:
    await services.save_milestone("acme/shop", "v1")

    assert await services.list_milestones([]) == []
    assert [m.name for m in await services.list_milestones(None)] == ["v1"]
