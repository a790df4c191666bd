"""Upload tokens: created for one repository (and optionally some plans), listed, revoked, and
checked on every upload, with a rate limit kept in the database so that every web process agrees."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from core import tokens
from core.catalog import NotFound, ensure_repository
from core.clock import utcnow
from core.db import db_datetime, execute
from core.models import UploadToken
from core.names import check_repository_name

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RATE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenGrant:
    """What an upload token presented with a request may do."""

    id: int
    name: str
    repository: str
    # Empty: any plan of the repository.
    plans: tuple[str, ...]

    def allows_repository(self, repository: str) -> bool:
        # GitHub names compare ignoring case.
        return repository.lower() == self.repository.lower()

    def allows_plan(self, plan: str) -> bool:
        return not self.plans or plan in self.plans

    @property
    def scope(self) -> str:
        plans = ", ".join(self.plans) if self.plans else "any plan"
        return f"{self.repository} ({plans})"


class TokenRefused(Exception):
    """A token that proves nothing: unknown, malformed or revoked. The message says what to do."""


@dataclass(frozen=True)
class TokenInfo:
    repository: str
    name: str
    plans: list[str]
    prefix: str
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


async def create_token(repository: str, name: str, plans: Sequence[str], created_by: str) -> tuple[str, TokenInfo]:
    """A new token; the token itself is returned here once and never stored."""
    check_repository_name(repository)
    if not _NAME.match(name):
        raise ValueError(f"token name {name!r}: use letters, digits, '.', '_' or '-' (at most 100)")
    plans = sorted({plan.strip() for plan in plans})
    if any(not plan for plan in plans):
        raise ValueError("a plan name cannot be empty")
    token = tokens.new_token()
    try:
        async with in_transaction() as client:
            stored = await UploadToken.create(
                using_db=client,
                repository=await ensure_repository(repository, client),
                name=name,
                plans=plans,
                token_hash=tokens.token_hash(token),
                prefix=token[: tokens.SHOWN_LENGTH],
                created_by=created_by,
                active_name=name,
            )
    except IntegrityError:
        raise ValueError(
            f"{repository} already has a token named {name}: revoke it first "
            f"(`milestones token revoke {name} --repo {repository}`) or choose another name"
        ) from None
    return token, _info(stored, repository)


async def list_tokens(repository: str | None = None, *, include_revoked: bool = False) -> list[TokenInfo]:
    query = UploadToken.all().prefetch_related("repository").order_by("repository_id", "name", "id")
    if repository is not None:
        query = query.filter(repository__full_name__iexact=check_repository_name(repository))
    if not include_revoked:
        query = query.filter(revoked_at__isnull=True)
    return [_info(stored, stored.repository.full_name) for stored in await query]


async def revoke_token(repository: str | None, name: str, revoked_by: str) -> TokenInfo:
    """Revoke the live token `name` of `repository`, or of the one repository with such a token."""
    async with in_transaction() as client:
        query = UploadToken.filter(active_name=name)
        if repository is not None:
            query = query.filter(repository__full_name__iexact=check_repository_name(repository))
        found = await query.select_for_update().using_db(client).prefetch_related("repository")
        if not found:
            where = f"{repository} has no" if repository is not None else "no"
            raise NotFound(f"{where} live token named {name} (`milestones token list` shows them)")
        if len(found) > 1:
            owners = ", ".join(sorted(stored.repository.full_name for stored in found))
            raise ValueError(f"{name} is a token of several repositories: {owners}; name one with --repo")
        [stored] = found
        stored.revoked_at = utcnow()
        stored.revoked_by = revoked_by
        stored.active_name = None
        await stored.save(using_db=client, update_fields=["revoked_at", "revoked_by", "active_name"])
    return _info(stored, stored.repository.full_name)


async def authenticate_token(token: str) -> TokenGrant:
    """The grant of a presented token; TokenRefused when it proves nothing."""
    if not tokens.well_formed(token):
        raise TokenRefused(
            f"not a milestones upload token (they start with {tokens.PREFIX}); create one with `milestones token create`"
        )
    stored = await UploadToken.get_or_none(token_hash=tokens.token_hash(token)).prefetch_related("repository")
    if stored is None:
        raise TokenRefused("unknown token: it was never issued by this service, or its repository was removed")
    if stored.revoked_at is not None:
        raise TokenRefused(
            f"token {stored.name} of {stored.repository.full_name} was revoked on {stored.revoked_at:%Y-%m-%d}; "
            "create a new one with `milestones token create`"
        )
    return TokenGrant(stored.id, stored.name, stored.repository.full_name, tuple(stored.plans))


async def take_upload_slot(grant: TokenGrant, per_minute: int) -> float | None:
    """Count one upload against the token's window; None when allowed, else the seconds to wait.

    One conditional UPDATE: atomic on both engines, so concurrent requests to several web
    processes never let more than `per_minute` through a window.
    """
    now = utcnow()
    expired = now - RATE_WINDOW
    fresh = "window_started_at IS NULL OR window_started_at <= ?"
    async with in_transaction() as client:
        taken = await execute(
            client,
            f"UPDATE upload_token SET window_count = CASE WHEN {fresh} THEN 1 ELSE window_count + 1 END, "
            f"window_started_at = CASE WHEN {fresh} THEN ? ELSE window_started_at END, last_used_at = ? "
            f"WHERE id = ? AND ({fresh} OR window_count < ?)",
            [*map(db_datetime, (expired, expired, now, now)), grant.id, db_datetime(expired), per_minute],
        )
        if taken:
            return None
        stored = await UploadToken.get(id=grant.id, using_db=client)
    started = stored.window_started_at or now
    return max(1.0, math.ceil((started + RATE_WINDOW - now).total_seconds()))


def _info(stored: UploadToken, repository: str) -> TokenInfo:
    return TokenInfo(
        repository=repository,
        name=stored.name,
        plans=list(stored.plans),
        prefix=stored.prefix,
        created_by=stored.created_by,
        created_at=stored.created_at,
        last_used_at=stored.last_used_at,
        revoked_at=stored.revoked_at,
        revoked_by=stored.revoked_by,
    )
