"""`installation` and `installation_repositories`: which repositories the App may work on."""

from __future__ import annotations

from gidgethub import routing, sansio

from core.enums import InstallationStatus
from core.installations import record_installation
from integrations.github.events import HandlerContext, on

router = routing.Router()

_STATUS = {
    "created": InstallationStatus.ACTIVE,
    "new_permissions_accepted": InstallationStatus.ACTIVE,
    "unsuspend": InstallationStatus.ACTIVE,
    "suspend": InstallationStatus.SUSPENDED,
    "deleted": InstallationStatus.DELETED,
}


def _names(repositories: list[dict] | None) -> list[str]:
    return [repository["full_name"] for repository in repositories or []]


@on(router, "installation")
async def installation_changed(event: sansio.Event, context: HandlerContext) -> str:
    installation = event.data["installation"]
    status = _STATUS.get(event.data["action"], InstallationStatus.ACTIVE)
    added = _names(event.data.get("repositories")) if status is InstallationStatus.ACTIVE else []
    await record_installation(installation["id"], installation["account"]["login"], status, added=added)
    return f"installation {installation['id']} {status.value}" + (f", {len(added)} repositories" if added else "")


@on(router, "installation_repositories")
async def repositories_changed(event: sansio.Event, context: HandlerContext) -> str:
    installation = event.data["installation"]
    added = _names(event.data.get("repositories_added"))
    removed = _names(event.data.get("repositories_removed"))
    # Repositories can change while an installation is suspended; that does not lift it.
    await record_installation(installation["id"], installation["account"]["login"], None, added=added, removed=removed)
    return f"installation {installation['id']}: {len(added)} added, {len(removed)} removed"
