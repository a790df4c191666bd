"""Authenticated access to GitHub's REST API: as a GitHub App installation, or with one token.

PyGithub does the work: App JWTs, installation tokens refreshed shortly before they
expire, retries on 5xx and secondary rate limits. It is synchronous, so callers run
it off the event loop (`asyncio.to_thread`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Literal

from github import Auth, Github, GithubIntegration, GithubRetry

from core.settings import Settings

log = logging.getLogger(__name__)

# Below this share of the hourly limit, say so in the log (once per reset window).
LOW_RATE_SHARE = 0.1
MAX_RATE_LIMIT_WAIT = 180
# An installation found for a repository is asked again after this long (the App may be reinstalled).
INSTALLATION_LOOKUP_SECONDS = 3600


class GitHubUnavailable(RuntimeError):
    """No GitHub credentials are configured, so nothing can be fetched from the API."""


class GitHubAccess:
    def __init__(self, settings: Settings, **client_options: Any):
        """`client_options` go to PyGithub (tests against a loopback fake turn off its pacing and retry backoff)."""
        self.api_url = settings.github_api_url
        # Lazy: a repository object costs no request until something is read from it.
        # Rate limits: PyGithub waits for a reset up to a few minutes, then raises, so that
        # a nearly spent hour defers work (a delivery's retry, a check's publication)
        # instead of holding a thread for up to an hour.
        retry = GithubRetry(max_rate_limit_wait=MAX_RATE_LIMIT_WAIT)
        self._options = {"base_url": self.api_url, "lazy": True, "retry": retry, **client_options}
        self.app_id = settings.github_app_id
        self._token = settings.github_token.get_secret_value() if settings.github_token else None
        key = settings.github_private_key_pem()
        self._integration = (
            GithubIntegration(auth=Auth.AppAuth(settings.github_app_id, key), **self._options)
            if settings.github_app_id is not None and key
            else None
        )
        self._clients: dict[int | None, Github] = {}
        self._installations: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._warned_reset: int | None = None

    @property
    def mode(self) -> Literal["app", "token"] | None:
        if self._integration is not None:
            return "app"
        return "token" if self._token else None

    def describe(self) -> str:
        if self.mode == "app":
            return f"GitHub API as an App installation at {self.api_url}"
        if self.mode == "token":
            return f"GitHub API with GITHUB_TOKEN at {self.api_url}"
        return (
            "GitHub API access is off (set GITHUB_APP_ID and GITHUB_PRIVATE_KEY, or GITHUB_TOKEN): "
            "workflow runs and policy pushes cannot be fetched"
        )

    def client(self, repository: str, installation_id: int | None = None) -> Github:
        """A client allowed to read `repository`; in App mode, through its installation."""
        if self._integration is not None:
            key: int | None = installation_id or self.installation_id(repository)
        elif self._token is not None:
            key = None
        else:
            raise GitHubUnavailable(self.describe())
        with self._lock:
            if key not in self._clients:
                self._clients[key] = (
                    self._integration.get_github_for_installation(key)
                    if self._integration is not None and key is not None
                    else Github(auth=Auth.Token(self._token or ""), **self._options)
                )
            return self._clients[key]

    def installation_id(self, repository: str) -> int | None:
        """The App installation that covers `repository` (None in token mode), looked up at most hourly."""
        if self._integration is None:
            return None
        with self._lock:
            known = self._installations.get(repository)
        if known is not None and known[1] > time.monotonic():
            return known[0]
        owner, name = repository.split("/", 1)
        found = self._integration.get_repo_installation(owner, name).id
        with self._lock:
            self._installations[repository] = (found, time.monotonic() + INSTALLATION_LOOKUP_SECONDS)
        return found

    @staticmethod
    def token(client: Github) -> str:
        """The bearer token the client uses (refreshed by PyGithub when near expiry), for httpx downloads."""
        auth = client.requester.auth
        assert auth is not None
        return auth.token

    def note_rate_limit(self, client: Github) -> None:
        """Log once per reset window when the primary rate limit runs low."""
        remaining, limit = client.requester.rate_limiting
        reset = client.requester.rate_limiting_resettime
        if limit > 0 and remaining < limit * LOW_RATE_SHARE and self._warned_reset != reset:
            self._warned_reset = reset
            minutes = max(0, round((reset - time.time()) / 60))
            log.warning("GitHub rate limit low: %d of %d requests left, resets in %d min", remaining, limit, minutes)
