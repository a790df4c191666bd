"""A milestone's quarantine kept in step with its policy and its tests' last runs.

Runs in the caller's transaction after a launch is applied and after a policy change: the
policy file's entries are matched against the milestone's tests, and the flaky rule
(core.quarantine) moves tests in and out. Every move is a row: who or what, when and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from core.clock import utcnow
from core.db import fetch
from core.links import link_matcher
from core.models import Milestone, Quarantine
from core.policy import MilestonePolicy, QuarantineEntry
from core.quarantine import Move, auto_move, why_quarantined, why_released

POLICY, AUTO, SLACK = "policy", "auto", "slack"
BY_POLICY = "the policy file"
BY_RULE = "the flaky rule"
LISTED = "listed in the policy file"


@dataclass(frozen=True)
class Candidate:
    test_id: int
    recent: str
    flaky_recent: str


async def refresh(client: BaseDBAsyncClient, milestone: Milestone, policy: MilestonePolicy) -> None:
    now = utcnow()
    active = {
        row.test_case_id: row
        for row in await Quarantine.filter(milestone=milestone, active_test__not_isnull=True).using_db(client)
    }
    await _follow_policy(client, milestone, policy.quarantine, active, now)
    await _follow_rule(client, milestone, policy, active, now)


async def _follow_policy(
    client: BaseDBAsyncClient,
    milestone: Milestone,
    entries: list[QuarantineEntry] | None,
    active: dict[int, Quarantine],
    now: datetime,
) -> None:
    wanted: dict[int, QuarantineEntry] = {}
    if entries:
        rows = await fetch(
            client,
            "SELECT tc.id, tc.classname, tc.name, tc.file FROM milestone_test mt "
            "JOIN test_case tc ON tc.id = mt.test_case_id WHERE mt.milestone_id = ?",
            [milestone.id],
        )
        # The first entry that names a test gives its reason and expiry.
        for entry in reversed(entries):
            matcher = link_matcher([entry.test])
            wanted.update((row[0], entry) for row in rows if matcher(row[1], row[2], row[3]))
    for test_id, row in list(active.items()):
        if row.source != POLICY:
            continue
        listed = wanted.get(test_id)
        if listed is None:
            await release(client, row, BY_POLICY, "no longer listed in the policy file", now)
            del active[test_id]
        elif (row.reason, row.expires_on) != (listed.reason or LISTED, listed.expires):
            row.reason, row.expires_on = listed.reason or LISTED, listed.expires
            await row.save(using_db=client, update_fields=["reason", "expires_on"])
    for test_id, entry in wanted.items():
        current = active.get(test_id)
        if current is not None and current.source != POLICY:
            # The file owns the list: what a person or the rule put there now follows it.
            await release(client, current, BY_POLICY, "the policy file lists it", now)
            current = None
        if current is None:
            active[test_id] = await add(
                client,
                milestone.id,
                test_id,
                POLICY,
                BY_POLICY,
                entry.reason or "listed in the policy file",
                now,
                entry.expires,
            )


async def _follow_rule(
    client: BaseDBAsyncClient,
    milestone: Milestone,
    policy: MilestonePolicy,
    active: dict[int, Quarantine],
    now: datetime,
) -> None:
    config = policy.flaky
    by_rule = {test_id for test_id, row in active.items() if row.source == AUTO}
    if config.quarantine != "auto" and not by_rule:
        return
    rows = await fetch(
        client,
        "SELECT test_case_id, recent, flaky_recent FROM milestone_test WHERE milestone_id = ? AND flaky_recent LIKE '%Y%'",
        [milestone.id],
    )
    candidates = {row[0]: Candidate(row[0], row[1] or "", row[2] or "") for row in rows}
    if by_rule - candidates.keys():
        missing = sorted(by_rule - candidates.keys())
        for row in await fetch(
            client,
            f"SELECT test_case_id, recent, flaky_recent FROM milestone_test WHERE milestone_id = ? "
            f"AND test_case_id IN ({', '.join('?' * len(missing))})",
            [milestone.id, *missing],
        ):
            candidates[row[0]] = Candidate(row[0], row[1] or "", row[2] or "")
    for candidate in candidates.values():
        current = active.get(candidate.test_id)
        if current is not None and current.source != AUTO:
            continue  # a person's or the file's quarantine is theirs to end
        move = auto_move(
            config,
            quarantined_by_rule=current is not None,
            recent=candidate.recent,
            flaky_recent=candidate.flaky_recent,
        )
        if move is Move.QUARANTINE:
            reason = why_quarantined(config, candidate.flaky_recent)
            active[candidate.test_id] = await add(client, milestone.id, candidate.test_id, AUTO, BY_RULE, reason, now)
        elif move is Move.RELEASE and current is not None:
            await release(client, current, BY_RULE, why_released(config), now)
            del active[candidate.test_id]
    # Tests gone from the milestone's state (a rebuild without them) leave the rule's quarantine.
    for test_id in by_rule - candidates.keys():
        if test_id in active:
            await release(client, active.pop(test_id), BY_RULE, "no longer among the milestone's tests", now)


async def add(
    client: BaseDBAsyncClient,
    milestone_id: int,
    test_id: int,
    source: str,
    by: str,
    reason: str,
    now: datetime,
    expires_on: date | None = None,
) -> Quarantine:
    return await Quarantine.create(
        using_db=client,
        milestone_id=milestone_id,
        test_case_id=test_id,
        source=source,
        reason=reason,
        expires_on=expires_on,
        added_by=by,
        added_at=now,
        active_test=test_id,
    )


async def release(client: BaseDBAsyncClient, row: Quarantine, by: str, reason: str, now: datetime) -> None:
    row.active_test = None
    row.released_at = now
    row.released_by = by
    row.release_reason = reason
    await row.save(using_db=client, update_fields=["active_test", "released_at", "released_by", "release_reason"])
