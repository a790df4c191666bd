"""Repository names as GitHub spells them, and milestone tags, checked without loading
anything else (the CLI checks its arguments with this before it opens the database)."""

from __future__ import annotations

import re

_REPOSITORY_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def check_repository_name(full_name: str) -> str:
    if not _REPOSITORY_NAME.match(full_name):
        raise ValueError(f"repository must be OWNER/NAME, not {full_name!r}")
    return full_name


# How people paste a repository: its page, a clone URL, or a path below it.
_GITHUB_URL = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^@/]+@)?(?:www\.)?github\.com[:/]|git@github\.com:|(?:www\.)?github\.com/)"
    r"(?P<owner>[^/\s]+)/(?P<name>[^/\s?#]+?)(?:\.git)?/?(?:[/?#].*)?$",
    re.IGNORECASE,
)


def repository_from(text: str) -> str:
    """OWNER/NAME from OWNER/NAME in any case, or from a GitHub URL of the repository."""
    text = text.strip()
    found = _GITHUB_URL.match(text)
    candidate = f"{found['owner']}/{found['name']}" if found else text
    if not _REPOSITORY_NAME.match(candidate):
        raise ValueError(
            f"{text!r} is not a repository: write OWNER/NAME or its GitHub URL (https://github.com/OWNER/NAME)"
        )
    return candidate


_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
TAG_RULE = "a tag is one word of letters, digits, '.', '_' or '-' (at most 40)"


def is_tag(text: str) -> bool:
    return bool(_TAG.fullmatch(text))
