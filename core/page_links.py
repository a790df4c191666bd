"""Signed links to milestone pages, made wherever a milestone is shown (the web process's
checks and Slack answers, `milestones status` in a terminal) and checked by the page.

The page needs no login, so every link carries a key: an HMAC of the repository and the
milestone name under a secret this service already holds.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from core.settings import Settings

KEY_LENGTH = 32  # hex characters: 128 bits of the HMAC

# The milestone page's sections, by anchor: links from checks and Slack land on the one they speak of.
SECTIONS = ("criteria", "trend", "failing", "untested", "flaky", "defects", "launches", "signoff")


def milestone_path(repository: str, name: str) -> str:
    owner, _, repo = repository.partition("/")
    return f"/milestones/{quote(owner, safe='')}/{quote(repo, safe='')}/{quote(name, safe='')}"


class PageLinks:
    """Signed links to milestone pages; without a public URL and a secret there are none."""

    def __init__(self, public_url: str | None, secret: str | None):
        self.public_url = public_url or None
        self.secret = secret or None

    @classmethod
    def of(cls, settings: Settings) -> PageLinks:
        return cls(settings.public_url, page_key_secret(settings))

    def key(self, repository: str, name: str) -> str | None:
        if not self.secret:
            return None
        message = f"milestone-page\n{repository}\n{name}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()[:KEY_LENGTH]

    def milestone_url(self, repository: str, name: str, section: str | None = None) -> str | None:
        """The page's signed URL; `section` (one of SECTIONS) adds its anchor."""
        key = self.key(repository, name)
        if not self.public_url or key is None:
            return None
        if section is not None and section not in SECTIONS:
            raise ValueError(f"no section {section!r} on the milestone page")
        anchor = f"#{section}" if section else ""
        return f"{self.public_url.rstrip('/')}{milestone_path(repository, name)}?key={key}{anchor}"

    def valid(self, repository: str, name: str, key: str | None) -> bool:
        expected = self.key(repository, name)
        if expected is None or not key:
            return False
        # compare_digest refuses non-ASCII str: compare the bytes.
        return hmac.compare_digest(expected.encode(), key.encode("utf-8", "replace"))


def page_key_secret(settings: Settings) -> str | None:
    """Milestone page links are keyed with a secret this service already holds."""
    for secret in (settings.github_webhook_secret, settings.slack_signing_secret):
        if secret is not None:
            return secret.get_secret_value()
    return None
