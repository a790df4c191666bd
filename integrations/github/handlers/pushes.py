"""`push` to the default branch that changes `.github/milestones.yml`: the new policy applies."""

from __future__ import annotations

from gidgethub import routing, sansio

from core.policy import DEFAULT_SOURCE
from integrations.github.events import HandlerContext, Ignored, installation_of, on, repository_of
from integrations.github.policy_file import sync_policy

router = routing.Router()


def changes_policy(commits: list[dict]) -> bool:
    return any(
        DEFAULT_SOURCE in commit.get(kind, ()) for commit in commits for kind in ("added", "modified", "removed")
    )


@on(router, "push")
async def pushed(event: sansio.Event, context: HandlerContext) -> str:
    data = event.data
    default_branch = data["repository"].get("default_branch")
    if data["ref"] != f"refs/heads/{default_branch}" or data.get("deleted"):
        raise Ignored(f"push to {data['ref']}, not to the default branch {default_branch}")
    if not changes_policy(data.get("commits") or []):
        raise Ignored(f"push does not change {DEFAULT_SOURCE}")
    # The branch as it is now, not as of this push: a push processed late (a retry) must
    # not bring back an older file over a newer one.
    return await sync_policy(context, repository_of(event), installation_of(event), default_branch)
