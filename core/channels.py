"""Which repository a Slack channel speaks about by default."""

from __future__ import annotations

from core.catalog import NotFound, stored_repository
from core.db import column
from core.models import ChannelLink, Repository


async def link_channel(team_id: str, channel_id: str, repository: str, user_id: str) -> str | None:
    """Links the channel to a known repository; returns the repository it was linked to before."""
    repo = await stored_repository(repository)
    if repo is None:
        raise NotFound(f"no repository {repository}")
    before = await channel_repository(team_id, channel_id)
    await ChannelLink.update_or_create(
        team_id=team_id, channel_id=channel_id, defaults={"repository": repo, "linked_by": user_id}
    )
    return before


async def unlink_channel(team_id: str, channel_id: str) -> str | None:
    """Removes the channel's link; returns the repository it was linked to, if any."""
    link = await ChannelLink.get_or_none(team_id=team_id, channel_id=channel_id).prefetch_related("repository")
    if link is None:
        return None
    await link.delete()
    return link.repository.full_name


async def channel_repository(team_id: str, channel_id: str) -> str | None:
    link = await ChannelLink.get_or_none(team_id=team_id, channel_id=channel_id).prefetch_related("repository")
    return link.repository.full_name if link else None


async def linked_repositories(team_id: str) -> list[str]:
    names = await column(ChannelLink.filter(team_id=team_id), "repository__full_name")
    return sorted(set(names))


async def repository_names() -> list[str]:
    return sorted(await column(Repository.all(), "full_name"))


async def channels_of(repository: str, *, alerts: bool = False) -> list[str]:
    """The channels linked to a repository: where its milestones' news goes (with `alerts`,
    only those that take live alerts)."""
    query = ChannelLink.filter(repository__full_name__iexact=repository)
    if alerts:
        query = query.filter(alerts=True)
    return sorted(await column(query, "channel_id"))


async def set_alerts(team_id: str, channel_id: str, on: bool) -> str | None:
    """Turn the channel's live alerts on or off; returns its repository, None when it has none linked."""
    link = await ChannelLink.get_or_none(team_id=team_id, channel_id=channel_id).prefetch_related("repository")
    if link is None:
        return None
    link.alerts = on
    await link.save(update_fields=["alerts", "updated_at"])
    return link.repository.full_name
