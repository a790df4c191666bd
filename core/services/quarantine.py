"""Quarantine kept by people in Slack: adding and taking back tests, by approvers or admins."""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.transactions import in_transaction

from core import quarantine_state
from core.approvers import approvers_of
from core.catalog import lock_milestones, milestone_named, milestone_policy
from core.clock import utcnow
from core.db import fetch
from core.links import link_matcher
from core.models import Quarantine
from core.services.changes import MilestoneChange, after_change

MAX_MATCHED = 200


class QuarantineRefused(ValueError):
    """Said to the person as it is: who may change it, or why it cannot change."""


@dataclass(frozen=True)
class QuarantineEdit:
    change: MilestoneChange
    tests: list[str]  # the tests that moved


async def edit_quarantine(
    repository: str,
    milestone_name: str,
    *,
    by: str,
    by_admin: bool,
    add: str | None = None,
    remove: str | None = None,
    reason: str = "",
) -> QuarantineEdit:
    """`add` or `remove` names a test (any spelling of its id) or a glob of tests."""
    selector = (add or remove or "").strip()
    if not selector:
        raise QuarantineRefused("name the test, as its report spells it")
    async with in_transaction() as client:
        milestone = await milestone_named(client, repository, milestone_name)
        await lock_milestones(client, [milestone.id])
        policy = milestone_policy(milestone)
        if policy.quarantine is not None:
            raise QuarantineRefused(
                f"{milestone.name}'s quarantine is listed in {repository}'s .github/milestones.yml; change it there"
            )
        if not by_admin and by not in await approvers_of(client, milestone.id, policy):
            raise QuarantineRefused(f"only {milestone.name}'s approvers and workspace admins can change its quarantine")
        rows = await fetch(
            client,
            "SELECT tc.id, tc.classname, tc.name, tc.file FROM milestone_test mt "
            "JOIN test_case tc ON tc.id = mt.test_case_id WHERE mt.milestone_id = ?",
            [milestone.id],
        )
        matcher = link_matcher([selector])
        matched = {
            row[0]: f"{row[1]}.{row[2]}" if row[1] else row[2] for row in rows if matcher(row[1], row[2], row[3])
        }
        if not matched:
            raise QuarantineRefused(f"no test of {milestone.name} is called {selector}")
        if len(matched) > MAX_MATCHED:
            raise QuarantineRefused(f"{selector} names {len(matched):,} tests; name at most {MAX_MATCHED} at once")
        active = {
            row.test_case_id: row
            for row in await Quarantine.filter(milestone=milestone, active_test__in=list(matched)).using_db(client)
        }
        now = utcnow()
        moved = []
        for test_id, name in sorted(matched.items(), key=lambda item: item[1]):
            if add and test_id not in active:
                await quarantine_state.add(
                    client,
                    milestone.id,
                    test_id,
                    quarantine_state.SLACK,
                    by,
                    reason.strip() or "quarantined by hand",
                    now,
                )
                moved.append(name)
            elif remove and test_id in active:
                await quarantine_state.release(client, active[test_id], by, reason.strip() or "released by hand", now)
                moved.append(name)
        if not moved:
            state = "already in quarantine" if add else "not in quarantine"
            raise QuarantineRefused(f"{selector} is {state} in {milestone.name}")
        change = await after_change(client, milestone)
    return QuarantineEdit(change, moved)
