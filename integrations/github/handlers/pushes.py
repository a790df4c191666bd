"""`push` to the default branch that changes `.github/milestones.yml`: the new policy applies."""

from __future__ import annotations

from gidgethub import routing

from core.policy import DEFAULT_SOURCE
from integrations.github.events import (
    GitRef,
    HandlerContext,
    Ignored,
    Model,
    Payload,
    RepositoryRef,
    Text,
    WebhookEvent,
    on,
)
from integrations.github.policy_file import sync_policy

router = routing.Router()


class Commit(Model):
    added: list[str] | None = None
    modified: list[str] | None = None
    removed: list[str] | None = None

    def touches(self, path: str) -> bool:
        return any(path in (paths or ()) for paths in (self.added, self.modified, self.removed))


class PushedRepository(RepositoryRef):
    default_branch: GitRef | None = None


class PushEvent(Payload):
    repository: PushedRepository
    ref: Text
    deleted: bool | None = None


class PushCommits(Model):
    """Read only for a push to the default branch: a push may list thousands of commits."""

    commits: list[Commit] | None = None


@on(router, "push")
async def pushed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(PushEvent)
    default_branch = payload.repository.default_branch
    if payload.ref != f"refs/heads/{default_branch}" or payload.deleted:
        raise Ignored(f"push to {payload.ref}, not to the default branch {default_branch}")
    commits = (await event.payload(PushCommits)).commits
    if not any(commit.touches(DEFAULT_SOURCE) for commit in commits or []):
        raise Ignored(f"push does not change {DEFAULT_SOURCE}")
    # The branch as it is now, not as of this push: a push processed late (a retry) must
    # not bring back an older file over a newer one.
    return await sync_policy(context, payload.repository_name, payload.installation_id, default_branch)
