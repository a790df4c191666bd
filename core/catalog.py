"""Repositories, test plans and which plans each milestone includes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model

from core.models import Milestone, Repository, TestPlan
from core.names import check_repository_name
from core.policy import MilestonePolicy

Row = TypeVar("Row", bound=Model)


class NotFound(LookupError):
    """A repository or milestone the caller named does not exist."""


# Repository names compare as on GitHub, ignoring case: `ACME/Shop` finds the stored
# `acme/shop`, and the spelling stored first stays.


async def ensure_repository(full_name: str, client: BaseDBAsyncClient | None = None) -> Repository:
    check_repository_name(full_name)
    # The exact name first: the unique index answers it, and it is how names usually come.
    repository = await Repository.get_or_none(full_name=full_name, using_db=client)
    repository = repository or await stored_repository(full_name, client)
    if repository is None:
        repository, _ = await Repository.get_or_create(full_name=full_name, using_db=client)
    return repository


async def stored_repository(full_name: str, client: BaseDBAsyncClient | None = None) -> Repository | None:
    return await Repository.filter(full_name__iexact=full_name).using_db(client).first()


async def find_repository(full_name: str) -> Repository:
    repository = await stored_repository(full_name)
    if repository is None:
        raise NotFound(f"no repository {full_name}")
    return repository


def repository_named(full_names: Iterable[str], field: str = "repository__full_name") -> Q:
    """A filter on rows whose repository has one of these names (`field` leads to its name)."""
    lookups = [Q(**{f"{field}__iexact": name}) for name in full_names]
    nothing: dict[str, Any] = {f"{field}__in": []}
    return Q(*lookups, join_type=Q.OR) if lookups else Q(**nothing)


async def milestone_named(client: BaseDBAsyncClient, repository: str | None, name: str) -> Milestone:
    query = Milestone.filter(name=name)
    if repository:
        query = query.filter(repository__full_name__iexact=repository)
    found = await query.using_db(client).limit(2)
    if not found:
        where = f" in {repository}" if repository else ""
        raise NotFound(f"no milestone {name}{where}")
    if len(found) > 1:
        raise NotFound(f"milestone {name} exists in several repositories; name one with --repo")
    return found[0]


def milestone_policy(milestone: Milestone) -> MilestonePolicy:
    return MilestonePolicy.model_validate(milestone.policy or {})


async def ensure_plan(repository: Repository, name: str, client: BaseDBAsyncClient) -> TestPlan:
    """The named plan; a new plan joins the milestones that include every plan."""
    plan, created = await TestPlan.get_or_create(repository=repository, name=name, using_db=client)
    if created:
        for milestone in await Milestone.filter(repository=repository).using_db(client):
            if not milestone_policy(milestone).plans:
                await milestone.plans.add(plan, using_db=client)
    return plan


async def sync_milestone_plans(milestone: Milestone, policy: MilestonePolicy, client: BaseDBAsyncClient) -> bool:
    """Make the milestone include its policy's plans (all plans when none are named).

    Returns whether the set changed, which calls for a rebuild of the milestone's state.
    """
    repository_id = milestone.repository_id
    if policy.plans:
        wanted = [
            (await TestPlan.get_or_create(repository_id=repository_id, name=name, using_db=client))[0]
            for name in policy.plans
        ]
    else:
        wanted = await TestPlan.filter(repository_id=repository_id).using_db(client)
    current = await milestone.plans.all().using_db(client)
    if {plan.id for plan in current} == {plan.id for plan in wanted}:
        return False
    await milestone.plans.clear(using_db=client)
    if wanted:
        await milestone.plans.add(*wanted, using_db=client)
    return True


async def lock_milestones(client: BaseDBAsyncClient, ids: Iterable[int | None]) -> list[Milestone]:
    """Serialise the writers of these milestones until the transaction ends; their rows as read
    under the lock, in id order.

    PostgreSQL row locks, taken in id order so that two writers never wait on each
    other in a cycle; SQLite runs one write transaction at a time already.
    """
    wanted = sorted({milestone_id for milestone_id in ids if milestone_id is not None})
    if not wanted:
        return []
    # Whole rows: Tortoise drops FOR UPDATE from values_list queries.
    return await Milestone.filter(id__in=wanted).order_by("id").select_for_update().using_db(client)


async def await_first_writer(client: BaseDBAsyncClient, repository: Repository) -> None:
    """A row of the repository's about to be created (an issue's or pull request's first event):
    a writer doing the same in another process at once is waited for here, so that the caller,
    looking again, finds its row instead of failing on the unique index.

    FOR NO KEY UPDATE: it queues such writers without blocking the foreign-key checks of the
    repository's other new rows (FOR UPDATE did, and deadlocked with a writer holding a
    milestone). SQLite's transactions hold the database's one write lock from their start.
    """
    if client.capabilities.dialect == "postgres":
        await Repository.filter(id=repository.id).select_for_update(no_key=True).using_db(client)


async def locked_row(client: BaseDBAsyncClient, model: type[Row], **where: Any) -> Row | None:
    """The row `where` finds, locked (PostgreSQL) until the transaction ends; None if there is none."""
    return await model.filter(**where).select_for_update().using_db(client).first()


async def locked_or_first(
    client: BaseDBAsyncClient, repository: Repository, model: type[Row], **where: Any
) -> Row | None:
    """The repository's row `where` finds, locked; when there is none yet, a writer creating it in
    another process at once is waited for (`await_first_writer`) and the row looked for again."""
    row = await locked_row(client, model, repository=repository, **where)
    if row is None:
        await await_first_writer(client, repository)
        row = await locked_row(client, model, repository=repository, **where)
    return row


async def lock_plan(client: BaseDBAsyncClient, plan: TestPlan) -> None:
    """Serialise launches of one plan, so attempts and duplicates are judged one at a time."""
    await TestPlan.filter(id=plan.id).select_for_update().using_db(client)
