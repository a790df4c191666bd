"""Finding the milestone a person meant from what they typed: `v2`, `V2.0` and `2.0` all mean `v2.0`."""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from core.catalog import NotFound, repository_named
from core.enums import MilestoneState
from core.models import Milestone

SUGGESTIONS = 5
_SEPARATORS = re.compile(r"[\s_\-]+")
_VERSION_PREFIX = re.compile(r"^v(?:ersion)?\s*(?=\d)")
_TRAILING_ZEROS = re.compile(r"(?:\.0+)+$")


class MilestoneRef(NamedTuple):
    repository: str
    name: str
    open: bool = True


@dataclass(frozen=True)
class Resolution:
    """Exactly one of: `found`; `ambiguous` (one name in several repositories); or neither,
    with `suggestions` (possibly empty) of what the person may have meant."""

    query: str
    found: MilestoneRef | None = None
    ambiguous: list[MilestoneRef] = field(default_factory=list)
    suggestions: list[MilestoneRef] = field(default_factory=list)


def normalise(name: str) -> str:
    """Case, separators, a `v` before the version and trailing `.0`s do not tell milestones apart."""
    text = _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", name).casefold()).strip()
    text = _VERSION_PREFIX.sub("", text)
    return _TRAILING_ZEROS.sub("", text)


def match(query: str, candidates: Sequence[MilestoneRef]) -> Resolution:
    """The closest rule that finds anything wins: exact, any case, normalised, then a
    unique normalised prefix of whole words (`sprint` for `Sprint 24`; never `v1` for
    `v10` or `v2` for `v2.1`, which are other versions)."""
    wanted = query.strip()
    key = normalise(wanted)
    rules = (
        lambda ref: ref.name == wanted,
        lambda ref: ref.name.casefold() == wanted.casefold(),
        lambda ref: normalise(ref.name) == key,
    )
    for rule in rules:
        hits = [ref for ref in candidates if rule(ref)]
        if hits:
            return _decide(query, hits)
    prefixed = [ref for ref in candidates if key and normalise(ref.name).startswith(key + " ")]
    if len({ref.name for ref in prefixed}) == 1:
        return _decide(query, prefixed)
    return Resolution(query, suggestions=_close(key, prefixed, candidates))


def _decide(query: str, hits: list[MilestoneRef]) -> Resolution:
    if len(hits) == 1:
        return Resolution(query, found=hits[0])
    names = {ref.name for ref in hits}
    if len(names) == 1 and len({ref.repository for ref in hits}) == len(hits):
        open_hits = [ref for ref in hits if ref.open]
        if len(open_hits) == 1:
            return Resolution(query, found=open_hits[0])
        return Resolution(query, ambiguous=sorted(hits, key=lambda ref: ref.repository))
    # Different names that read the same (`v2.0` and `V2`): ask which.
    return Resolution(query, suggestions=_ordered(hits))


def _close(key: str, prefixed: list[MilestoneRef], candidates: Sequence[MilestoneRef]) -> list[MilestoneRef]:
    by_key: dict[str, list[MilestoneRef]] = {}
    for ref in candidates:
        by_key.setdefault(normalise(ref.name), []).append(ref)
    close = difflib.get_close_matches(key, list(by_key), n=SUGGESTIONS, cutoff=0.5)
    found = list(dict.fromkeys([*prefixed, *(ref for name in close for ref in by_key[name])]))
    return _ordered(found)[:SUGGESTIONS]


def _ordered(refs: Iterable[MilestoneRef]) -> list[MilestoneRef]:
    return sorted(refs, key=lambda ref: (not ref.open, ref.name.casefold(), ref.repository))


async def milestone_refs(repositories: Sequence[str] | None = None) -> list[MilestoneRef]:
    """Every milestone, open and closed, of the given repositories (all when None)."""
    query = Milestone.all()
    if repositories is not None:
        query = query.filter(repository_named(repositories))
    rows = await query.values_list("repository__full_name", "name", "state")
    return [
        MilestoneRef(repository, name, MilestoneState(state) is MilestoneState.OPEN) for repository, name, state in rows
    ]


async def resolve_milestone(query: str, repositories: Sequence[str] | None = None) -> Resolution:
    return match(query, await milestone_refs(repositories))


class MilestoneNotFound(NotFound):
    """No milestone goes by what was typed (perhaps with suggestions), or several
    repositories have it: the message says which, in the words Slack uses too."""

    def __init__(self, resolution: Resolution, where: str | None):
        self.resolution = resolution
        if resolution.ambiguous:
            message = ambiguous_text(resolution) + "; name one with --repo"
        else:
            message = not_found_text(resolution, where)
        super().__init__(message)


async def find_milestone_ref(query: str, repository: str | None = None) -> MilestoneRef:
    """The one milestone `query` means (in `repository` when given); MilestoneNotFound otherwise."""
    resolution = await resolve_milestone(query, [repository] if repository else None)
    if resolution.found is None:
        raise MilestoneNotFound(resolution, repository)
    return resolution.found


# Wording shared by every place that answers a name: the CLI and Slack say the same.


def not_found_text(resolution: Resolution, where: str | None) -> str:
    """`No milestone 2.1 in acme/shop; did you mean v2.0 or v2.1?`"""
    place = f" in {where}" if where else ""
    text = f"No milestone {resolution.query}{place}"
    if resolution.suggestions:
        text += "; did you mean " + " or ".join(ref_text(ref) for ref in resolution.suggestions[:3]) + "?"
    return text


def ambiguous_text(resolution: Resolution) -> str:
    """`v2.0 is a milestone in several repositories: acme/shop, acme/web`"""
    repositories = ", ".join(ref.repository for ref in resolution.ambiguous)
    return f"{resolution.query} is a milestone in several repositories: {repositories}"


def ref_text(ref: MilestoneRef) -> str:
    closed = " (closed)" if not ref.open else ""
    return f"{ref.name}{closed}"


async def option_read_as_milestone_word(
    word: str, options: Sequence[str], repositories: Sequence[str] | None
) -> tuple[MilestoneRef | None, list[MilestoneRef]] | None:
    """`defects high`: a lone word that is one of the command's options (and no milestone's
    name) is that option. Returns None when it is not read so; else the one open milestone it
    is about (None when there is not exactly one) and the open milestones to choose from."""
    if word.lower() not in options:
        return None
    refs = await milestone_refs(repositories)
    if match(word, refs).found is not None:
        return None
    open_refs = _ordered(ref for ref in refs if ref.open)
    return (open_refs[0] if len(open_refs) == 1 else None), open_refs
