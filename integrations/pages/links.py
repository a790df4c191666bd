"""Signed links to milestone pages: where a check run's `details_url` and Slack's buttons point.

A link carries a key: an HMAC of the repository and the milestone name under a server
secret. Whoever was shown the link (the check, the Slack message) can open the page without
signing in; a wrong key and an unknown milestone get the same 404, so the page never tells
whether a milestone exists.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

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
