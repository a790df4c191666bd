"""The repository's `.github/milestones.yml`, fetched from GitHub and applied."""

from __future__ import annotations

import asyncio
import logging

from github import Github, GithubException

from core import services
from core.catalog import stored_repository
from core.policy import DEFAULT_SOURCE
from integrations.github.events import HandlerContext

log = logging.getLogger(__name__)


def fetch_policy(client: Github, repository: str, ref: str | None) -> bytes | None:
    """The policy file as of `ref` (the default branch when None); None when there is none."""
    repo = client.get_repo(repository)
    try:
        content = repo.get_contents(DEFAULT_SOURCE, ref=ref) if ref else repo.get_contents(DEFAULT_SOURCE)
    except GithubException as error:
        if error.status == 404:
            return None
        raise
    assert not isinstance(content, list), f"{DEFAULT_SOURCE} is a folder"
    return content.decoded_content


async def sync_policy(context: HandlerContext, repository: str, installation_id: int | None, ref: str | None) -> str:
    """Apply the policy file as of `ref` (default branch when None); a removed file means the defaults."""
    client = await asyncio.to_thread(context.github.client, repository, installation_id)
    text = await asyncio.to_thread(fetch_policy, client, repository, ref)
    source = f"{DEFAULT_SOURCE}@{ref[:12]}" if ref else DEFAULT_SOURCE
    stored = await stored_repository(repository)
    if stored is not None and not stored.policy_errors and (stored.policy_text or "") == (text or b"").decode():
        return f"{source}: unchanged"
    load, changes = await services.apply_policy_file(repository, text or b"", source)
    if not load.ok:
        for error in load.errors:
            log.warning("%s: invalid policy, the last valid one stays: %s", repository, error)
        return f"{source}: invalid ({len(load.errors)} errors), the last valid policy stays"
    if text is None:
        return f"{DEFAULT_SOURCE} absent: default policy, {len(changes)} milestones"
    return f"{source}: applied to {len(changes)} milestones"
