"""`installation` and `installation_repositories`: which repositories the App may work on."""

from __future__ import annotations

from typing import Annotated

from gidgethub import routing
from pydantic import StringConstraints

from core.enums import InstallationStatus
from core.installations import record_installation
from integrations.github.events import Envelope, HandlerContext, InstallationRef, Model, RepositoryRef, WebhookEvent, on

router = routing.Router()

_STATUS = {
    "created": InstallationStatus.ACTIVE,
    "new_permissions_accepted": InstallationStatus.ACTIVE,
    "unsuspend": InstallationStatus.ACTIVE,
    "suspend": InstallationStatus.SUSPENDED,
    "deleted": InstallationStatus.DELETED,
}


class Account(Model):
    login: Annotated[str, StringConstraints(max_length=200)]


class Installation(InstallationRef):
    account: Account


class InstallationEvent(Envelope):
    installation: Installation
    repositories: list[RepositoryRef] | None = None


class InstallationRepositoriesEvent(Envelope):
    installation: Installation
    repositories_added: list[RepositoryRef] | None = None
    repositories_removed: list[RepositoryRef] | None = None


def _names(repositories: list[RepositoryRef] | None) -> list[str]:
    return [repository.full_name for repository in repositories or []]


@on(router, "installation")
async def installation_changed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(InstallationEvent)
    installation = payload.installation
    status = _STATUS.get(event.action or "", InstallationStatus.ACTIVE)
    added = _names(payload.repositories) if status is InstallationStatus.ACTIVE else []
    await record_installation(installation.id, installation.account.login, status, added=added)
    return f"installation {installation.id} {status.value}" + (f", {len(added)} repositories" if added else "")


@on(router, "installation_repositories")
async def repositories_changed(event: WebhookEvent, context: HandlerContext) -> str:
    payload = await event.payload(InstallationRepositoriesEvent)
    installation = payload.installation
    added = _names(payload.repositories_added)
    removed = _names(payload.repositories_removed)
    # Repositories can change while an installation is suspended; that does not lift it.
    await record_installation(installation.id, installation.account.login, None, added=added, removed=removed)
    return f"installation {installation.id}: {len(added)} added, {len(removed)} removed"
