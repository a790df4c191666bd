"""GitHub App installations and the repositories they cover."""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.transactions import in_transaction

from core.catalog import ensure_repository, repository_named, stored_repository
from core.enums import InstallationStatus
from core.models import Installation, Repository


async def record_installation(
    installation_id: int,
    account: str,
    status: InstallationStatus | None,
    *,
    added: Iterable[str] = (),
    removed: Iterable[str] = (),
) -> Installation:
    """Record an installation and which repositories it now covers; `status` None keeps the stored one."""
    async with in_transaction() as client:
        installation, created = await Installation.get_or_create(
            id=installation_id,
            defaults={"account": account, "status": status or InstallationStatus.ACTIVE},
            using_db=client,
        )
        if not created and (installation.account, installation.status) != (account, status or installation.status):
            installation.account = account
            installation.status = status or installation.status
            await installation.save(using_db=client, update_fields=["account", "status", "updated_at"])
        for full_name in added:
            repository = await ensure_repository(full_name, client)
            repository.installation_id = installation_id
            await repository.save(using_db=client, update_fields=["installation_id"])
        await (
            Repository.filter(repository_named(removed, "full_name"), installation_id=installation_id)
            .using_db(client)
            .update(installation_id=None)
        )
    return installation


async def installation_status(installation_id: int) -> InstallationStatus | None:
    installation = await Installation.get_or_none(id=installation_id)
    return installation.status if installation else None


async def installation_for(full_name: str) -> int | None:
    repository = await stored_repository(full_name)
    return repository.installation_id if repository else None
