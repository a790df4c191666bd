"""Pull requests and the gates they show: which milestones a pull request ships in, and what
was published on it, so that a new verdict edits the old check instead of adding one."""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from core import outbox
from core.catalog import NotFound, find_repository, milestone_policy
from core.db import column, fetch
from core.enums import MilestoneState
from core.models import GateCheck, Milestone, PullRequest

OPEN = "open"
CONFIG_SLOT = "config"


def gate_slot(milestone_id: int) -> str:
    return f"milestone:{milestone_id}"


def claims_by_branch(milestone: Milestone, base_ref: str) -> bool:
    """Whether an open milestone takes in pull requests into `base_ref` that carry no GitHub milestone.

    Only milestones that name their branches do: one that counts every branch would
    otherwise claim every pull request of the repository.
    """
    if milestone.state is not MilestoneState.OPEN:
        return False
    policy = milestone_policy(milestone)
    return bool(policy.branches) and policy.branch_matches(base_ref)


async def milestones_of(pull: PullRequest, client: BaseDBAsyncClient | None = None) -> list[Milestone]:
    """The milestones a pull request ships in: its GitHub milestone, else those tracking its base branch."""
    if pull.milestone_id is not None:
        return await Milestone.filter(id=pull.milestone_id).using_db(client)
    candidates = (
        await Milestone.filter(repository_id=pull.repository_id, state=MilestoneState.OPEN)
        .order_by("name")
        .using_db(client)
    )
    return [milestone for milestone in candidates if claims_by_branch(milestone, pull.base_ref)]


async def pull_request_milestones(repository: str, number: int) -> list[Milestone]:
    repo = await find_repository(repository)
    pull = await PullRequest.get_or_none(repository=repo, number=number)
    if pull is None:
        raise NotFound(f"no pull request #{number} in {repository}")
    return await milestones_of(pull)


_SHOWING = """
SELECT id FROM pull_request WHERE milestone_id = ? AND state = ?
UNION
SELECT gc.pull_request_id FROM gate_check gc JOIN pull_request pr ON pr.id = gc.pull_request_id
WHERE gc.milestone_id = ? AND gc.active = TRUE AND pr.state = ?
"""


async def mark_showing(client: BaseDBAsyncClient, milestone: Milestone) -> None:
    """The milestone's verdict may have changed: every open pull request that shows it is due a refresh.

    Those in it by GitHub milestone or by base branch, and those whose check still
    names it (it left the milestone's branches, and the check must say so).
    """
    ids = {pull_id for (pull_id,) in await fetch(client, _SHOWING, [milestone.id, OPEN, milestone.id, OPEN])}
    if milestone.state is MilestoneState.OPEN and milestone_policy(milestone).branches:
        unassigned = (
            await PullRequest.filter(
                repository_id=milestone.repository_id,
                milestone_id=None,
                state=OPEN,
            )
            .using_db(client)
            .values_list("id", "base_ref")
        )
        ids.update(pull_id for pull_id, base_ref in unassigned if claims_by_branch(milestone, base_ref))
    if ids:
        await outbox.mark(client, outbox.PULL_REQUEST_CHECKS, ids)


async def open_pull_request(pull_id: int) -> PullRequest | None:
    """The pull request with its repository, while it is open: only open ones show the gate."""
    pull = await PullRequest.get_or_none(id=pull_id).prefetch_related("repository")
    return pull if pull is not None and pull.state == OPEN else None


async def published_checks(pull_id: int) -> dict[str, GateCheck]:
    return {check.slot: check for check in await GateCheck.filter(pull_request_id=pull_id)}


async def save_published(pull_id: int, slot: str, **written: object) -> None:
    """Record what a publisher wrote in `slot` (GateCheck's fields): it shows on the pull request now."""
    await GateCheck.update_or_create(pull_request_id=pull_id, slot=slot, defaults={**written, "active": True})


async def retire_check(check: GateCheck, *, digest: str, conclusion: str) -> None:
    """The check no longer shows the milestone's gate (the pull request left it); what it says
    now, if it could be edited."""
    check.active, check.digest, check.conclusion = False, digest, conclusion
    await check.save(update_fields=["active", "digest", "conclusion", "updated_at"])


async def evaluate_again(github_id: int) -> bool:
    """Re-evaluate or Re-run on a check run: its pull request's checks are written again (the
    policy file's check reads the files again). False when the check run is not one of ours."""
    check = await GateCheck.get_or_none(github_id=github_id)
    if check is None:
        return False
    if check.slot == CONFIG_SLOT:
        await files_checked(check.pull_request_id, None)
    await request_refresh([check.pull_request_id], forced=True)
    return True


async def files_checked(pull_id: int, head_sha: str | None) -> None:
    """The pull request's changed files were looked through at `head_sha`; None: look again."""
    await PullRequest.filter(id=pull_id).update(files_checked_sha=head_sha)


async def open_pull_requests(
    repository: str, *, numbers: list[int] | None = None, head_sha: str | None = None
) -> list[int]:
    """Open pull requests by number, or by head commit (a fork's check suite names none)."""
    query = PullRequest.filter(repository__full_name__iexact=repository, state=OPEN)
    query = query.filter(number__in=numbers) if numbers is not None else query.filter(head_sha=head_sha)
    return await column(query, "id")


async def refresh_open_checks() -> None:
    """Mark every open pull request that shows a gate: what it says moves with the calendar too."""
    pulls = await column(GateCheck.filter(active=True, pull_request__state=OPEN).distinct(), "pull_request_id")
    await request_refresh(pulls)


async def request_refresh(pull_ids: list[int], *, forced: bool = False) -> None:
    """Ask for the pull requests' checks to be written again (Re-evaluate, Re-run)."""
    async with in_transaction() as client:
        await outbox.mark(client, outbox.PULL_REQUEST_CHECKS, pull_ids, forced=forced)
