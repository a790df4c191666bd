"""Signing in with GitHub, and what GitHub says a signed-in person may read.

The GitHub App's user authorization and a classic OAuth app work alike: the person is sent to
GitHub's authorize page, comes back with a code, and the code becomes a user token. That token
asks GitHub which of the service's repositories the person can read, and the members of the
GitHub teams named as approvers. Answers are kept for a few minutes, by person.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

import httpx

from core import services
from core.approvers import github_user

# What a classic OAuth app needs to see private repositories and team members; a GitHub App's
# user token ignores scopes and has the App's permissions, within what the person may do.
OAUTH_SCOPE = "repo read:org"
TIMEOUT = httpx.Timeout(10.0)
# Of the repositories to check for one person, at most this many questions at once.
CONCURRENT_CHECKS = 8


class SignInFailed(Exception):
    """GitHub did not sign the person in; the message says why."""


@dataclass(frozen=True)
class GitHubUser:
    login: str
    name: str | None
    token: str


class GitHubSignIn:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        web_url: str,
        api_url: str,
        public_url: str,
        cache_seconds: float,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.web_url = web_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.callback_url = public_url.rstrip("/") + "/auth/github/callback"
        self.cache_seconds = cache_seconds
        # (login, digest of the token) -> (when read, repositories readable)
        self._readable: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def authorize_url(self, state: str) -> str:
        query = {"client_id": self.client_id, "redirect_uri": self.callback_url, "state": state, "scope": OAUTH_SCOPE}
        return f"{self.web_url}/login/oauth/authorize?{urlencode(query)}"

    async def sign_in(self, code: str) -> GitHubUser:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            try:
                answer = await client.post(
                    f"{self.web_url}/login/oauth/access_token",
                    data={
                        "client_id": self.client_id,
                        "client_secret": self.client_secret,
                        "code": code,
                        "redirect_uri": self.callback_url,
                    },
                    headers={"Accept": "application/json"},
                )
                token = answer.json().get("access_token") if answer.status_code == 200 else None
                if not token:
                    raise SignInFailed("GitHub did not accept the sign-in; please try again")
                user = await client.get(f"{self.api_url}/user", headers=_headers(token))
            except (httpx.HTTPError, ValueError) as error:
                raise SignInFailed(f"GitHub could not be reached ({type(error).__name__}); please try again") from None
        if user.status_code != 200:
            raise SignInFailed("GitHub did not say who signed in; please try again")
        data = user.json()
        return GitHubUser(data["login"], data.get("name"), token)

    async def readable(self, login: str, token: str) -> frozenset[str]:
        """The service's repositories this person can read on GitHub."""
        key = (login.lower(), hashlib.sha256(token.encode()).hexdigest())
        cached = self._readable.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        names = await services.repository_names()
        gate = asyncio.Semaphore(CONCURRENT_CHECKS)
        async with httpx.AsyncClient(timeout=TIMEOUT, headers=_headers(token)) as client:

            async def can_read(name: str) -> bool:
                async with gate:
                    owner, _, repo = name.partition("/")
                    answer = await client.get(f"{self.api_url}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}")
                if answer.status_code != 200:
                    return False
                permissions = answer.json().get("permissions")
                # A public repository is readable by all; `permissions` says what this person may do.
                return bool(permissions.get("pull")) if isinstance(permissions, dict) else True

            try:
                allowed = await asyncio.gather(*(can_read(name) for name in names))
            except httpx.HTTPError:
                # GitHub away: nothing is shown, and nothing is remembered.
                return frozenset()
        readable = frozenset(name for name, ok in zip(names, allowed, strict=True) if ok)
        self._readable[key] = (time.monotonic(), readable)
        return readable

    async def refresh_teams(self, teams: tuple[str, ...], token: str) -> None:
        """Read the members of these approver teams (`github:@org/team`) from GitHub, as the
        signed-in person may see them, unless read lately; a team they cannot see is left as it was."""
        stale = await services.stale_user_groups(list(teams), max_age=timedelta(seconds=self.cache_seconds))
        found: dict[str, tuple[str | None, list[str]]] = {}
        async with httpx.AsyncClient(timeout=TIMEOUT, headers=_headers(token)) as client:
            for team in stale:
                org, _, slug = team.removeprefix("github:@").partition("/")
                members: list[str] = []
                url: str | None = f"{self.api_url}/orgs/{quote(org, safe='')}/teams/{quote(slug, safe='')}/members"
                params: dict[str, str] | None = {"per_page": "100"}
                try:
                    while url:
                        answer = await client.get(url, params=params)
                        if answer.status_code != 200:
                            break
                        members += [github_user(member["login"]) for member in answer.json()]
                        url, params = answer.links.get("next", {}).get("url"), None
                    else:
                        found[team] = (f"{org}/{slug}", members)
                except httpx.HTTPError:
                    continue
        if found:
            await services.store_user_groups(found)


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
