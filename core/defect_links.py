"""Stored links between defects and the tests they break (core.links says which).

A defect's selectors are matched against the repository's tests when its issue changes, and
each new test against the repository's defects when a launch brings it: so the gate reads
links, never matches selectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from core.catalog import milestone_policy
from core.db import execute_for_ids, execute_many, fetch, fetch_for_ids
from core.links import affected_selectors, link_matcher
from core.models import Defect, Milestone
from core.selectors import RequiredSelectors


async def required_ids(client: BaseDBAsyncClient, repository_id: int) -> list[str]:
    """The exact test ids the repository's milestones require: named verbatim in an issue, they link."""
    ids: list[str] = []
    for milestone in await Milestone.filter(repository_id=repository_id).using_db(client):
        ids += RequiredSelectors.parse(milestone_policy(milestone).required).exact
    return list(dict.fromkeys(ids))


async def matching_tests(client: BaseDBAsyncClient, repository_id: int, selectors: Sequence[str]) -> set[int]:
    if not selectors:
        return set()
    matcher = link_matcher(selectors)
    rows = await fetch(
        client, "SELECT id, classname, name, file FROM test_case WHERE repository_id = ?", [repository_id]
    )
    return {row[0] for row in rows if matcher(row[1], row[2], row[3])}


async def linked_tests(client: BaseDBAsyncClient, defect_id: int) -> set[int]:
    rows = await fetch(client, "SELECT test_case_id FROM defect_link WHERE defect_id = ?", [defect_id])
    return {row[0] for row in rows}


async def milestones_of_tests(client: BaseDBAsyncClient, repository_id: int, test_ids: set[int]) -> set[int]:
    """The repository's milestones that hold any of its tests `test_ids`."""
    # Asked per milestone, through the (milestone, test) key: by test alone, the read went
    # through every milestone's every test (15 ms on PostgreSQL for one milestone of 50,000).
    rows = await fetch_for_ids(
        client,
        "SELECT m.id FROM milestone m WHERE m.repository_id = ? AND EXISTS "
        "(SELECT 1 FROM milestone_test mt WHERE mt.milestone_id = m.id AND mt.test_case_id {ids})",
        [repository_id],
        sorted(test_ids),
    )
    return {row[0] for row in rows}


async def store_links(client: BaseDBAsyncClient, defect_id: int, before: set[int], after: set[int]) -> None:
    await execute_for_ids(
        client,
        "DELETE FROM defect_link WHERE defect_id = ? AND test_case_id {ids}",
        [defect_id],
        sorted(before - after),
    )
    await execute_many(
        client,
        "INSERT INTO defect_link (defect_id, test_case_id) VALUES (?, ?) ON CONFLICT (defect_id, test_case_id) DO NOTHING",
        [(defect_id, test_id) for test_id in sorted(after - before)],
    )


async def relink_required(client: BaseDBAsyncClient, repository_id: int) -> None:
    """Work the repository's defects' links out again after its required tests changed: a
    required id a body names links only while it is required."""
    ids = await required_ids(client, repository_id)
    for defect in await Defect.filter(repository_id=repository_id, body__not_isnull=True).using_db(client):
        affects = affected_selectors(defect.body, ids)
        if affects == (defect.affects or []):
            continue
        before = await linked_tests(client, defect.id)
        after = await matching_tests(client, repository_id, affects)
        defect.affects = affects
        await defect.save(using_db=client, update_fields=["affects", "updated_at"])
        await store_links(client, defect.id, before, after)


async def link_new_tests(
    client: BaseDBAsyncClient, repository_id: int, tests: Sequence[tuple[int, str, str, str | None]]
) -> None:
    """New tests (id, classname, name, file) linked to the repository's defects that name them."""
    if not tests:
        return
    defects = await fetch(
        client,
        "SELECT id, affects FROM defect WHERE repository_id = ? AND affects IS NOT NULL AND affects <> '[]'",
        [repository_id],
    )
    rows = []
    for defect_id, affects in defects:
        selectors = affects if isinstance(affects, list) else _json_list(affects)
        if not selectors:
            continue
        matcher = link_matcher(selectors)
        rows += [(defect_id, test[0]) for test in tests if matcher(test[1], test[2], test[3])]
    await execute_many(
        client,
        "INSERT INTO defect_link (defect_id, test_case_id) VALUES (?, ?) ON CONFLICT (defect_id, test_case_id) DO NOTHING",
        rows,
    )


def _json_list(text: str | None) -> list[str]:
    value = json.loads(text) if text else []
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
