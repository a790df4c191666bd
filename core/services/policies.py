"""The repository's policy file: validated, adopted by its milestones, and the defects classified by it."""

from __future__ import annotations

from collections.abc import Collection

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from core import defect_links, quarantine_state, state
from core.catalog import (
    ensure_plan,
    ensure_repository,
    lock_milestones,
    milestone_policy,
    stored_repository,
    sync_milestone_plans,
)
from core.clock import utcnow
from core.enums import DefectState
from core.models import Defect, Milestone, Repository
from core.policy import DEFAULT_ENTRY, DEFAULT_SOURCE, DefectsConfig, MilestonePolicy, PolicyFile
from core.policy_file import PolicyLoad, load_policy
from core.selectors import GLOB_CHARS
from core.services.changes import MilestoneChange, after_change


class PolicyInvalid(ValueError):
    def __init__(self, load: PolicyLoad):
        self.load = load
        super().__init__("\n".join(str(error) for error in load.errors))


async def apply_policy_file(
    repository: str, text: str | bytes, source: str = DEFAULT_SOURCE
) -> tuple[PolicyLoad, list[MilestoneChange]]:
    """Validate and apply a policy file; an invalid one is recorded and the last valid one stays."""
    async with in_transaction() as client:
        repo = await ensure_repository(repository, client)
        load = load_policy(text, source)
        if not load.ok:
            repo.policy_errors = [vars(error) for error in load.errors]
            await repo.save(using_db=client, update_fields=["policy_errors"])
            return load, []
        return load, await adopt_policy(client, repo, text, load)


async def adopt_policy(
    client: BaseDBAsyncClient, repo: Repository, text: str | bytes, load: PolicyLoad, *, rebuild: Collection[int] = ()
) -> list[MilestoneChange]:
    """Make a valid policy the repository's: plans, milestones, defect classes, verdicts."""
    assert load.policy is not None
    policy = load.policy
    repo.policy_text = text.decode() if isinstance(text, bytes) else text
    repo.policy_errors = None
    repo.policy_updated_at = utcnow()
    await repo.save(using_db=client, update_fields=["policy_text", "policy_errors", "policy_updated_at"])
    for plan_name, plan_config in policy.plans.items():
        plan = await ensure_plan(repo, plan_name, client)
        plan.workflow = plan_config.workflow
        plan.artifacts = plan_config.artifacts
        await plan.save(using_db=client, update_fields=["workflow", "artifacts"])
    for milestone_name in policy.milestones:
        if milestone_name != DEFAULT_ENTRY and not GLOB_CHARS & set(milestone_name):
            await Milestone.get_or_create(repository=repo, name=milestone_name, using_db=client)
    await classify_defects(client, repo, policy.defects)
    milestones = await Milestone.filter(repository=repo).using_db(client)
    await lock_milestones(client, [milestone.id for milestone in milestones])
    required_moved = False
    for milestone in milestones:
        rebuilt = milestone.id in rebuild
        required_moved |= await apply_milestone_policy(client, policy, milestone, rebuild=rebuilt, relink=False)
    # Once for the repository, whichever of its milestones' required tests changed.
    if required_moved:
        await defect_links.relink_required(client, repo.id)
    return [await after_change(client, milestone) for milestone in milestones]


async def policy_is_current(repository: str, text: str | bytes | None) -> bool:
    """Whether the repository already follows this policy file (None: no file, the defaults),
    with no error recorded since: then applying it again would change nothing."""
    stored = await stored_repository(repository)
    if stored is None or stored.policy_errors:
        return False
    wanted = text.decode() if isinstance(text, bytes) else (text or "")
    return (stored.policy_text or "") == wanted


def repository_policy(repo: Repository) -> PolicyFile:
    if not repo.policy_text:
        return PolicyFile()
    load = load_policy(repo.policy_text)
    assert load.policy is not None, "only valid policy files are stored"
    return load.policy


def policy_of(repository_file: PolicyFile, milestone: Milestone) -> MilestonePolicy:
    """The milestone's entry of the file; a clone keeps the gate it was copied with unless
    the file has an entry of its own (its name, or a glob) for it."""
    entry = repository_file.entry_for(milestone.name)
    if milestone.copied_policy is not None and entry in (None, DEFAULT_ENTRY):
        copied = MilestonePolicy.model_validate(milestone.copied_policy)
        if copied.timezone is None and repository_file.timezone is not None:
            copied = copied.model_copy(update={"timezone": repository_file.timezone})
        return copied
    return repository_file.policy_for(milestone.name)


async def apply_milestone_policy(
    client: BaseDBAsyncClient,
    repository_file: PolicyFile,
    milestone: Milestone,
    *,
    rebuild: bool = False,
    relink: bool = True,
) -> bool:
    """Give the milestone its entry of the repository policy; rebuild state if scope moved.

    Returns whether its required tests changed; then the repository's defect links are worked
    out again, unless `relink` is False (a caller applying several milestones does it once)."""
    policy = policy_of(repository_file, milestone)
    before = milestone_policy(milestone) if milestone.policy else None
    milestone.policy = policy.model_dump(mode="json")
    await milestone.save(using_db=client, update_fields=["policy", "updated_at"])
    plans_moved = await sync_milestone_plans(milestone, policy, client)
    if rebuild or plans_moved or before is None or before.branches != policy.branches:
        await state.rebuild(client, milestone, policy)
    elif before.required != policy.required:
        await state.refresh_required(client, milestone, policy, everything=True)
    required_moved = (before.required if before else []) != policy.required
    if required_moved and relink:
        await defect_links.relink_required(client, milestone.repository_id)
    await quarantine_state.refresh(client, milestone, policy)
    return required_moved


async def github_milestone(
    client: BaseDBAsyncClient, repo: Repository, policy: PolicyFile, number: int | None, title: str | None
) -> Milestone | None:
    """Our milestone for the GitHub milestone an issue or PR carries; made if not seen yet."""
    if number is not None:
        found = await Milestone.get_or_none(repository=repo, github_number=number, using_db=client)
        if found is not None:
            return found
    if not title:
        return None
    found = await Milestone.get_or_none(repository=repo, name=title, using_db=client)
    if found is None:
        found = await Milestone.create(repository=repo, name=title, github_number=number, using_db=client)
        await apply_milestone_policy(client, policy, found)
    return found


async def classify_defects(
    client: BaseDBAsyncClient, repo: Repository, config: DefectsConfig, *, relabel: dict[str, str | None] | None = None
) -> None:
    """Classify every issue of the repository again; `relabel` renames (or, to None, drops) labels first."""
    for defect in await Defect.filter(repository=repo).using_db(client):
        if relabel:
            renamed = (relabel.get(label.lower(), label) for label in defect.labels)
            defect.labels = [label for label in renamed if label is not None]
        classify(defect, config, repo.label_aliases)
        await defect.save(using_db=client, update_fields=["labels", "severity", "state", "counts"])


def classify(defect: Defect, config: DefectsConfig, aliases: dict[str, list[str]] | None = None) -> None:
    """Severity, state and whether it counts, from the issue's stored facts and the policy.

    `aliases` maps a renamed label to its former names: a policy written before the
    rename still recognises it.
    """
    labels = list(defect.labels)
    for label in defect.labels:
        labels.extend((aliases or {}).get(label.lower(), ()))
    defect.severity = config.severity_for(labels)
    if defect.issue_state == "open":
        defect.state = DefectState.OPEN
    else:
        verified = any(label.strip().lower() == config.verify_label.lower() for label in labels)
        defect.state = DefectState.VERIFIED if verified else DefectState.RESOLVED
    not_planned = defect.issue_state == "closed" and defect.state_reason == "not_planned"
    defect.counts = config.is_defect(labels) and not not_planned and not defect.deleted
