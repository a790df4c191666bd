"""What every webhook handler shares: its context, how it declines, how it reads its payload.

Handlers live in `integrations.github.handlers`, one module per concern, each with its
own router (`@on(router, "issues", action="opened")`), as bedevere's are. Each is
called with a `WebhookEvent` and a `HandlerContext`; it reads the payload through a
pydantic model defined next to it (`await event.payload(IssuesEvent)`: the fields it
uses, with their types and lengths), raises `Ignored` when the delivery asks nothing of
us, and `Unprocessable` when trying again cannot help. A payload its model refuses is
unprocessable: it fails at once, with the reason, instead of being retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

import httpx
from gidgethub import routing, sansio
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from core.names import check_repository_name
from core.settings import Settings
from integrations.github.api import GitHubAccess
from integrations.github.artifacts import ARTIFACT_LIMITS
from integrations.limits import ReportLimits


class Ignored(Exception):
    """The delivery needs no work (an event we do not follow, a workflow that feeds no plan)."""


class Unprocessable(Exception):
    """Retrying cannot help (a hostile artifact, a malformed payload): the delivery fails at once."""


@dataclass
class HandlerContext:
    github: GitHubAccess
    http: httpx.AsyncClient
    limits: ReportLimits = ARTIFACT_LIMITS


@asynccontextmanager
async def handler_context(settings: Settings, github: GitHubAccess | None = None) -> AsyncIterator[HandlerContext]:
    """A context for handlers, with an HTTP client for artifact downloads open while it lasts."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as http:
        yield HandlerContext(github or GitHubAccess(settings), http)


# Payload fields --------------------------------------------------------------------------
# GitHub's ids and numbers are 64-bit; what we store is clipped or refused at the column's
# length; text reaches the database without NUL, which PostgreSQL cannot store.

INT64_MAX = 2**63 - 1
GitHubId = Annotated[int, Field(ge=1, le=INT64_MAX)]
PositiveInt32 = Annotated[int, Field(ge=1, le=2**31 - 1)]


def _storable(text: str) -> str:
    return text.replace("\x00", "")


def clip(length: int) -> Callable[[str], str]:
    """A validator that stores a string cut to `length` characters."""
    return lambda text: _storable(text)[:length]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


Text = Annotated[str, AfterValidator(_storable)]
Timestamp = Annotated[datetime, AfterValidator(_aware)]
# Refused past the column's length: a URL, a commit or a branch name cut short would be wrong.
Url = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable)]
Sha = Annotated[str, StringConstraints(max_length=64), AfterValidator(_storable)]
GitRef = Annotated[str, StringConstraints(max_length=255), AfterValidator(_storable)]
# Stored cut to the column's length (Milestone.name): a title is better shortened than lost.
MilestoneTitle = Annotated[str, AfterValidator(clip(200))]
Action = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")]
RepositoryName = Annotated[str, StringConstraints(max_length=200), AfterValidator(check_repository_name)]


class Model(BaseModel):
    """Part of a payload: only the fields we read, validated; everything else is passed over."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class RepositoryRef(Model):
    full_name: RepositoryName


class InstallationRef(Model):
    id: GitHubId


class Envelope(Model):
    """What intake reads of every delivery to file it (and what `milestones deliveries` lists)."""

    action: Action | None = None
    repository: RepositoryRef | None = None
    installation: InstallationRef | None = None


class Payload(Envelope):
    """A payload of a repository's event."""

    repository: RepositoryRef

    @property
    def repository_name(self) -> str:
        return self.repository.full_name

    @property
    def installation_id(self) -> int | None:
        return self.installation.id if self.installation else None


class Label(Model):
    name: Text


class MilestoneRef(Model):
    """The GitHub milestone an issue or pull request carries."""

    number: GitHubId
    title: MilestoneTitle


P = TypeVar("P", bound=Model)


def describe_invalid(error: ValidationError, limit: int = 5) -> str:
    """`issue.number: Input should be a valid integer; ...`: where each problem is, and what it is."""
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'payload'}: {problem['msg']}"
        for problem in error.errors(include_url=False)
    ]
    more = f"; and {len(problems) - limit} more" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


class WebhookEvent(sansio.Event):
    """A stored delivery as its handlers see it.

    Routing reads only the event and its action (`data` holds just the action); the
    payload stays JSON text until a handler reads it through its model, so a large
    delivery that no handler wants is never parsed.
    """

    def __init__(self, event: str, *, action: str | None, guid: str, payload: str, installation_id: int | None):
        super().__init__({} if action is None else {"action": action}, event=event, delivery_id=guid)
        self.action = action
        self.installation_id = installation_id
        self.text = payload

    async def payload(self, model: type[P]) -> P:
        try:
            return await parse(model, self.text)
        except ValidationError as error:
            raise Unprocessable(f"{self.event} payload is invalid: {describe_invalid(error)}") from None


# Past this many characters a document is parsed in a thread, so that the event loop keeps
# answering requests meanwhile (24 MB of small objects take about a second).
LARGE_DOCUMENT = 1024 * 1024


async def parse(model: type[P], text: str | bytes) -> P:
    """The document read through `model`; raises pydantic's ValidationError."""
    if len(text) > LARGE_DOCUMENT:
        return await asyncio.to_thread(model.model_validate_json, text)
    return model.model_validate_json(text)


Handler = Callable[[WebhookEvent, HandlerContext], Awaitable[str | None]]


def on(router: routing.Router, event_type: str, **detail: Any) -> Callable[[Handler], Handler]:
    """`router.register` for handlers that take a `WebhookEvent` and return a note for the
    delivery's record (gidgethub's types say its callbacks take a plain event and return None)."""

    def register(handler: Handler) -> Handler:
        router.add(cast(Any, handler), event_type, **detail)
        return handler

    return register
